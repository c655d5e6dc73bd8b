//! The caller's side of one gateway's wire format: what a carrier sends the server and how it
//! answers what the server sends back. The shared loop in `mod.rs` paces audio, tracks playback
//! and prints; a new carrier is one module and its row in `crate::gateways`.

use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub(super) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One server frame, as the shared loop needs to act on it.
pub(crate) enum Received {
    /// Agent audio, decoded into the caller's PCM buffer at [`CallerWire::rate`].
    Audio,
    /// The server asks to hear when the audio sent before it has played.
    Mark(String),
    /// The agent's turn ended; nothing to acknowledge.
    TurnEnd,
    /// The server dropped the audio queued for playback.
    Clear {
        /// Whether the carrier answers marks still waiting on the dropped audio.
        ack_marks: bool,
        /// The carrier's confirmation, if it sends one.
        reply: Option<Message>,
    },
    /// A session event carried in-band (client protocol).
    Event(Value),
    /// Nothing for the caller to do.
    Ignore,
    Error(WireError),
}

/// Something the server sent that the carrier would not accept.
pub(crate) struct WireError {
    pub code: &'static str,
    pub message: String,
    /// The human line, after `error  `.
    pub human: String,
}

impl WireError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self { code, human: message.clone(), message }
    }

    pub fn unknown_event(event: Option<&str>) -> Self {
        Self {
            code: "unknown_event",
            message: format!("{event:?}"),
            human: format!("server sent unknown event {event:?}"),
        }
    }

    pub fn unexpected_binary() -> Self {
        Self::new("unexpected_binary", "server sent a binary frame on a text-only stream")
    }
}

/// A gateway's wire format, spoken from the caller's side.
pub(crate) trait CallerWire: Send {
    /// Sample rate of the audio on the wire, both ways: the carriers' 8 kHz unless said otherwise.
    fn rate(&self) -> u32 {
        8000
    }
    /// The carrier call id the server registers the call under.
    fn call_id(&self) -> &str;
    /// Whether session events come over this socket; otherwise the call is watched over SSE.
    fn in_band_events(&self) -> bool {
        false
    }
    /// A start parameter the carrier carries for us (the agent, the stream token `vt`).
    fn add_param(&mut self, key: &str, value: &str);
    /// Frames sent right after connecting, before any audio.
    fn opening(&mut self) -> Vec<Message>;
    /// One 20 ms frame of caller audio.
    fn media(&mut self, frame: &[i16]) -> Message;
    /// Hanging up.
    fn stop(&mut self) -> Message;
    /// Tells the server the audio before mark `name` has played.
    fn mark_played(&mut self, name: &str) -> Option<Message>;
    /// A text frame from the server, already parsed.
    fn text(&mut self, v: &Value, pcm: &mut Vec<i16>) -> Received;
    /// A binary frame from the server.
    fn binary(&mut self, _b: &[u8], _pcm: &mut Vec<i16>) -> Received {
        Received::Error(WireError::unexpected_binary())
    }
    /// For a wire without marks: a pause this long in the agent's audio ends its turn in the
    /// printout (what the caller hears as the agent stopping).
    fn turn_gap(&self) -> Option<Duration> {
        None
    }
}

/// Start parameters, naming the agent unless it is the server's `default`.
pub(super) fn agent_params(agent: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    if agent != "default" {
        m.insert("agent".into(), Value::String(agent.to_string()));
    }
    m
}

/// The µ-law media frames of a JSON carrier: the frame counter and the buffers every frame
/// reuses (one string allocation per message).
#[derive(Default)]
pub(super) struct UlawMedia {
    /// Frames sent so far.
    chunk: u64,
    ulaw: Vec<u8>,
    prefix: String,
}

impl UlawMedia {
    /// The next frame: `head` writes the JSON up to the payload's opening quote, given the
    /// frame's 1-based chunk number; the base64 payload and `"}}` follow.
    pub fn next(&mut self, pcm: &[i16], head: impl FnOnce(&mut String, u64)) -> Message {
        self.chunk += 1;
        media::g711::encode_ulaw_into(pcm, &mut self.ulaw);
        self.prefix.clear();
        head(&mut self.prefix, self.chunk);
        Message::text(b64_frame(&self.prefix, &self.ulaw, r#""}}"#))
    }
}

/// Base64 `raw` into a JSON string body, between `prefix` and `suffix`, in one allocation.
pub(super) fn b64_frame(prefix: &str, raw: &[u8], suffix: &str) -> String {
    use base64::Engine;
    let mut s = String::with_capacity(prefix.len() + raw.len().div_ceil(3) * 4 + suffix.len());
    s.push_str(prefix);
    B64.encode_string(raw, &mut s);
    s.push_str(suffix);
    s
}

/// Decode a base64 µ-law payload into PCM.
pub(super) fn ulaw_payload(b64: &str, raw: &mut Vec<u8>, pcm: &mut Vec<i16>) -> Received {
    use base64::Engine;
    raw.clear();
    match B64.decode_vec(b64.as_bytes(), raw) {
        Ok(()) => {
            media::g711::decode_ulaw_into(raw, pcm);
            Received::Audio
        }
        Err(_) => Received::Error(WireError::new("bad_base64", "server sent invalid base64")),
    }
}

/// The `name` of a JSON string field, or "".
pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    //! Each carrier wire against the server's own codec for that carrier: what the caller sends
    //! decodes as the carrier's call, and what the server sends back is understood.

    use super::*;
    use crate::gateways::{Gateway, Media, GATEWAYS};
    use axum::extract::ws::Message as AxMessage;
    use session::transport::Inbound;

    fn to_axum(m: Message) -> AxMessage {
        match m {
            Message::Text(t) => AxMessage::Text(t.as_str().into()),
            Message::Binary(b) => AxMessage::Binary(b),
            Message::Close(_) => AxMessage::Close(None),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn received(wire: &mut dyn CallerWire, m: AxMessage, pcm: &mut Vec<i16>) -> Received {
        match m {
            AxMessage::Text(t) => wire.text(&serde_json::from_str(t.as_str()).unwrap(), pcm),
            AxMessage::Binary(b) => wire.binary(&b, pcm),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn row(name: &str) -> &'static Gateway {
        GATEWAYS.iter().find(|g| g.name == name).expect("a registered gateway")
    }

    fn for_gateway(name: &str, agent: &str) -> Box<dyn CallerWire> {
        (row(name).caller)(agent)
    }

    /// Plays one call's worth of frames through a gateway's caller wire into its registered
    /// codec and back.
    fn round_trip(name: &str, acks_on_clear: bool, clear_reply: bool) {
        let gateway = row(name);
        let Media::Websocket { codec, .. } = gateway.media else { panic!("{name} is not a websocket") };
        let mut codec = codec();
        let mut wire = (gateway.caller)("a1");
        let mut pcm = Vec::new();
        let mut start = None;
        for m in wire.opening() {
            if let Inbound::Start(info) = codec.decode(&to_axum(m), &mut pcm).unwrap() {
                start = Some(info);
            }
        }
        let info = start.expect("a start");
        assert_eq!(info.call_id.as_deref(), Some(wire.call_id()), "{gateway:?} registers the call id we watch");
        assert_eq!(info.params.get("agent").map(String::as_str), Some("a1"));
        assert_eq!(codec.input_rate(), wire.rate());

        // Values µ-law represents exactly, so every codec round-trips them.
        let n = media::samples_per_20ms(wire.rate());
        let frame: Vec<i16> = (0..n).map(|i| media::g711::ulaw_to_linear(i as u8)).collect();
        for _ in 0..2 {
            assert_eq!(codec.decode(&to_axum(wire.media(&frame)), &mut pcm), Ok(Inbound::Audio));
            assert_eq!(pcm, frame);
        }
        let ack = wire.mark_played("t1").expect("carriers acknowledge marks");
        assert_eq!(codec.decode(&to_axum(ack), &mut pcm), Ok(Inbound::Mark("t1".into())));

        let mut enc = codec.encoder();
        let mut got = Vec::new();
        assert!(matches!(received(wire.as_mut(), enc.encode_audio(&frame), &mut got), Received::Audio));
        assert_eq!(got, frame);
        let mark = enc.encode_mark("t2").unwrap();
        assert!(matches!(received(wire.as_mut(), mark, &mut got), Received::Mark(n) if n == "t2"));
        match received(wire.as_mut(), enc.encode_clear().unwrap(), &mut got) {
            Received::Clear { ack_marks, reply } => {
                assert_eq!(ack_marks, acks_on_clear, "{gateway:?}");
                assert_eq!(reply.is_some(), clear_reply, "{gateway:?}");
                if let Some(r) = reply {
                    assert_eq!(codec.decode(&to_axum(r), &mut pcm), Ok(Inbound::Ignore));
                }
            }
            _ => panic!("{gateway:?}: clear not understood"),
        }
        let junk = serde_json::json!({"event": "dance", "action": "dance"});
        assert!(matches!(wire.text(&junk, &mut got), Received::Error(_)));
        assert_eq!(codec.decode(&to_axum(wire.stop()), &mut pcm), Ok(Inbound::Stop));
    }

    #[test]
    fn twilio_round_trips() {
        round_trip("twilio", true, false);
    }

    #[test]
    fn telnyx_round_trips() {
        round_trip("telnyx", true, false);
    }

    #[test]
    fn plivo_round_trips() {
        round_trip("plivo", false, true);
    }

    #[test]
    fn vonage_round_trips() {
        round_trip("vonage", false, true);
    }

    #[test]
    fn bad_payloads_are_typed_errors() {
        let mut pcm = Vec::new();
        let mut telnyx = for_gateway("telnyx", "a");
        let bad = serde_json::json!({"event": "media", "media": {"payload": "@@"}});
        assert!(matches!(telnyx.text(&bad, &mut pcm), Received::Error(e) if e.code == "bad_base64"));
        assert!(matches!(telnyx.binary(&[0, 0], &mut pcm), Received::Error(e) if e.code == "unexpected_binary"));
        let mut plivo = for_gateway("plivo", "a");
        let l16 = serde_json::json!({"event": "playAudio",
            "media": {"contentType": "audio/x-l16", "sampleRate": 16000, "payload": "AAA="}});
        assert!(matches!(plivo.text(&l16, &mut pcm), Received::Error(e) if e.code == "unsupported_format"));
        let mut vonage = for_gateway("vonage", "a");
        assert!(matches!(vonage.binary(&[0; 3], &mut pcm), Received::Error(e) if e.code == "bad_audio"));
        let notify = serde_json::json!({"action": "notify", "payload": {}});
        assert!(matches!(vonage.text(&notify, &mut pcm), Received::Error(e) if e.code == "bad_notify"));
    }
}
