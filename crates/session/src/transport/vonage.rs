//! Vonage Voice API websocket endpoint (NCCO `connect` → `websocket`): the first text frame is a
//! JSON header with `content-type: audio/l16;rate=N` and the NCCO's custom headers; it acts as
//! start. Audio is binary raw L16 little-endian mono in 20 ms frames both ways; later text
//! frames are `websocket:*` events. See shared/protocols/telephony.md A3.
//!
//! Vonage sends no call id of its own: the NCCO should pass the call `uuid` in its `headers`
//! (as `call_uuid`, `uuid` or `call_id`).

use super::lenient;
use super::{Inbound, StartInfo, TransportError, WireCodec, WireEncoder};
use axum::extract::ws::Message;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Rates Vonage negotiates; 24 kHz is only reported by third parties.
const RATES: [u32; 3] = [8000, 16000, 24000];

/// Header keys that may carry the carrier call id, in order of preference.
const CALL_ID_KEYS: [&str; 3] = ["call_uuid", "uuid", "call_id"];

pub struct VonageCodec {
    rate: u32,
    started: bool,
}

impl Default for VonageCodec {
    fn default() -> Self {
        Self { rate: 16000, started: false }
    }
}

impl VonageCodec {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Outbound half: binary L16 frames, `clear`, and marks as `notify` requests.
pub struct VonageEncoder {
    rate: u32,
    raw: Vec<u8>,
}

/// The sample rate of `audio/l16;rate=N` (case and spaces ignored).
fn l16_rate(content_type: &str) -> Result<u32, TransportError> {
    let ct = content_type.to_ascii_lowercase();
    let mut parts = ct.split(';').map(str::trim);
    let rate = (parts.next() == Some("audio/l16"))
        .then(|| parts.find_map(|p| p.strip_prefix("rate=")?.trim().parse::<u32>().ok()))
        .flatten()
        .filter(|r| RATES.contains(r));
    rate.ok_or_else(|| TransportError::UnsupportedFormat(lenient::clip(content_type, 40)))
}

impl VonageCodec {
    fn start(&mut self, mut header: Map<String, Value>) -> Result<Inbound, TransportError> {
        let rate = match header.remove("content-type") {
            Some(Value::String(ct)) => l16_rate(&ct)?,
            _ => return Err(TransportError::MissingField("content-type")),
        };
        header.remove("event");
        let mut params = HashMap::new();
        lenient::params(Value::Object(header), &mut params);
        let call_id = CALL_ID_KEYS.iter().find_map(|k| params.get(*k).filter(|v| !v.is_empty()).cloned());
        // A repeated header must not change the rate the runtime already resamples from.
        if !self.started {
            self.rate = rate;
            self.started = true;
        }
        Ok(Inbound::Start(StartInfo { stream_id: call_id.clone().unwrap_or_default(), call_id, params }))
    }

    fn control(&mut self, text: &str) -> Result<Inbound, TransportError> {
        let mut obj: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| TransportError::BadJson(e.to_string()))?;
        let event = match obj.get("event") {
            Some(Value::String(e)) => e.clone(),
            // The older header form has no event name, only headers.
            None if obj.contains_key("content-type") => return self.start(obj),
            _ => return Err(TransportError::MissingField("event")),
        };
        match event.as_str() {
            "websocket:connected" => self.start(obj),
            "websocket:dtmf" => {
                let digit = match obj.remove("dtmf") {
                    Some(Value::Object(mut d)) => d.remove("digit"),
                    Some(v @ Value::String(_)) => Some(v),
                    _ => None,
                }
                .or_else(|| obj.remove("digit"))
                .ok_or(TransportError::MissingField("digit"))?;
                Ok(Inbound::Dtmf(lenient::stringify(digit)))
            }
            // The echo of a `notify` we sent as a mark; other payloads are not ours.
            "websocket:notify" => Ok(obj
                .get("payload")
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .map_or(Inbound::Ignore, |n| Inbound::Mark(n.to_string()))),
            "websocket:cleared" => Ok(Inbound::Ignore),
            other => Err(TransportError::UnknownEvent(lenient::clip(other, 40))),
        }
    }
}

impl WireCodec for VonageCodec {
    fn gateway(&self) -> &'static str {
        "vonage"
    }

    fn decode(&mut self, msg: &Message, pcm: &mut Vec<i16>) -> Result<Inbound, TransportError> {
        match msg {
            Message::Binary(b) => {
                if !self.started {
                    return Err(TransportError::MediaBeforeStart);
                }
                media::l16::decode_le_into(b, pcm).map_err(|e| TransportError::BadAudio(e.to_string()))?;
                Ok(Inbound::Audio)
            }
            Message::Text(t) => self.control(t.as_str()),
            Message::Close(_) => Ok(Inbound::Stop),
            Message::Ping(_) | Message::Pong(_) => Ok(Inbound::Ignore),
        }
    }

    fn input_rate(&self) -> u32 {
        self.rate
    }

    fn encoder(&self) -> Box<dyn WireEncoder> {
        Box::new(VonageEncoder { rate: self.rate, raw: Vec::with_capacity(2048) })
    }
}

impl WireEncoder for VonageEncoder {
    fn output_rate(&self) -> u32 {
        self.rate
    }

    fn encode_audio(&mut self, frame: &[i16]) -> Message {
        media::l16::encode_le_into(frame, &mut self.raw);
        Message::Binary(bytes::Bytes::copy_from_slice(&self.raw))
    }

    /// Vonage drops its playback queue and answers `websocket:cleared`.
    fn encode_clear(&self) -> Option<Message> {
        Some(Message::Text(r#"{"action":"clear"}"#.into()))
    }

    /// Vonage has no marks; a `notify` is answered with `websocket:notify` carrying the same
    /// payload once the audio queued before it has played, which decodes back to the mark.
    fn encode_mark(&self, name: &str) -> Option<Message> {
        let v = serde_json::json!({"action": "notify", "payload": {"name": name}});
        Some(Message::Text(v.to_string().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_util::*;
    use serde_json::json;

    const CONNECTED: &str = r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000","call_uuid":"63f61863-4a51-4f6b-86e1-46edebcf9356","agent":"a1","n":2}"#;

    #[test]
    fn decodes_a_call() {
        let mut c = VonageCodec::new();
        let mut pcm = Vec::new();
        let Ok(Inbound::Start(info)) = c.decode(&text(CONNECTED), &mut pcm) else { panic!("start") };
        assert_eq!(info.call_id.as_deref(), Some("63f61863-4a51-4f6b-86e1-46edebcf9356"));
        assert_eq!(info.stream_id, "63f61863-4a51-4f6b-86e1-46edebcf9356");
        assert_eq!(info.params.get("agent").map(String::as_str), Some("a1"));
        assert_eq!(info.params.get("n").map(String::as_str), Some("2"));
        assert!(!info.params.contains_key("content-type"));
        assert!(!info.params.contains_key("event"));
        assert_eq!(c.input_rate(), 16000);

        let mut frame = vec![0u8; 640];
        frame[0..4].copy_from_slice(&[0x02, 0x01, 0xfe, 0xff]);
        assert_eq!(c.decode(&Message::Binary(frame.into()), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm.len(), 320);
        assert_eq!(&pcm[..2], &[0x0102, -2]);

        assert_eq!(
            c.decode(&text(r#"{"event":"websocket:dtmf","digit":"9","duration":250}"#), &mut pcm),
            Ok(Inbound::Dtmf("9".into()))
        );
        assert_eq!(
            c.decode(&text(r##"{"event":"websocket:dtmf","dtmf":{"digit":"#","duration":250}}"##), &mut pcm),
            Ok(Inbound::Dtmf("#".into()))
        );
        assert_eq!(
            c.decode(&text(r#"{"event":"websocket:notify","payload":{"name":"t1"}}"#), &mut pcm),
            Ok(Inbound::Mark("t1".into()))
        );
        assert_eq!(
            c.decode(&text(r#"{"event":"websocket:notify","payload":{"other":1}}"#), &mut pcm),
            Ok(Inbound::Ignore)
        );
        assert_eq!(c.decode(&text(r#"{"event":"websocket:cleared"}"#), &mut pcm), Ok(Inbound::Ignore));
        assert_eq!(c.decode(&Message::Close(None), &mut pcm), Ok(Inbound::Stop));
    }

    #[test]
    fn accepts_the_older_header_and_8k() {
        let mut c = VonageCodec::new();
        let mut pcm = Vec::new();
        let old = r#"{"app":"demo","uuid":"u-1","content-type":"Audio/L16; rate=8000"}"#;
        let Ok(Inbound::Start(info)) = c.decode(&text(old), &mut pcm) else { panic!("start") };
        assert_eq!(info.call_id.as_deref(), Some("u-1"));
        assert_eq!(info.params.get("app").map(String::as_str), Some("demo"));
        assert_eq!(c.input_rate(), 8000);
        let mut enc = c.encoder();
        assert_eq!(enc.output_rate(), 8000);
        let Message::Binary(b) = enc.encode_audio(&[0; 160]) else { panic!("not binary") };
        assert_eq!(b.len(), 320);
    }

    #[test]
    fn bad_input_is_typed() {
        let mut c = VonageCodec::new();
        let mut pcm = Vec::new();
        let code = |r: Result<Inbound, TransportError>| r.err().map(|e| e.code());
        assert_eq!(code(c.decode(&Message::Binary(vec![0; 640].into()), &mut pcm)), Some("media_before_start"));
        assert_eq!(code(c.decode(&text("not json"), &mut pcm)), Some("bad_json"));
        assert_eq!(code(c.decode(&text("[]"), &mut pcm)), Some("bad_json"));
        assert_eq!(code(c.decode(&text(r#"{"event":"websocket:dance"}"#), &mut pcm)), Some("unknown_event"));
        assert_eq!(code(c.decode(&text(r#"{"app":"demo"}"#), &mut pcm)), Some("missing_field"));
        assert_eq!(code(c.decode(&text(r#"{"event":"websocket:connected"}"#), &mut pcm)), Some("missing_field"));
        for ct in ["audio/l16;rate=44100", "audio/pcmu;rate=8000", "audio/l16"] {
            let h = json!({"event": "websocket:connected", "content-type": ct}).to_string();
            assert_eq!(code(c.decode(&text(&h), &mut pcm)), Some("unsupported_format"), "{ct}");
        }
        assert_eq!(code(c.decode(&text(r#"{"event":"websocket:dtmf"}"#), &mut pcm)), Some("missing_field"));

        assert!(matches!(c.decode(&text(CONNECTED), &mut pcm), Ok(Inbound::Start(_))));
        assert_eq!(code(c.decode(&Message::Binary(vec![0; 639].into()), &mut pcm)), Some("bad_audio"));
    }

    #[test]
    fn encodes_audio_clear_and_notify() {
        let mut c = VonageCodec::new();
        let mut pcm = Vec::new();
        assert!(matches!(c.decode(&text(CONNECTED), &mut pcm), Ok(Inbound::Start(_))));
        let mut enc = c.encoder();
        assert_eq!(enc.output_rate(), 16000);
        let mut frame = vec![0i16; 320];
        frame[0] = 0x0102;
        frame[1] = -2;
        let Message::Binary(b) = enc.encode_audio(&frame) else { panic!("not binary") };
        assert_eq!(b.len(), 640);
        assert_eq!(&b[..4], &[0x02, 0x01, 0xfe, 0xff]);
        let Some(Message::Text(t)) = enc.encode_clear() else { panic!() };
        assert_eq!(t.as_str(), r#"{"action":"clear"}"#);
        let Some(Message::Text(t)) = enc.encode_mark("t1") else { panic!() };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!(v, json!({"action": "notify", "payload": {"name": "t1"}}));
        assert!(enc.encode_error("x", "y").is_none());
    }
}
