//! Plivo Audio Streams (`<Stream bidirectional="true">` XML): camelCase JSON text frames with an
//! `event` field; audio is base64 µ-law 8 kHz or L16 (little-endian) 8/16 kHz, as chosen by the
//! XML `contentType` and echoed in `start.mediaFormat`. See shared/protocols/telephony.md A4.
//!
//! Playback (`playAudio`) uses the inbound format, which Plivo accepts for both encodings.

use super::lenient;
use super::{Inbound, StartInfo, TransportError, WireCodec, WireEncoder};
use axum::extract::ws::Message;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audio {
    Mulaw,
    L16,
}

impl Audio {
    fn content_type(self) -> &'static str {
        match self {
            Self::Mulaw => "audio/x-mulaw",
            Self::L16 => "audio/x-l16",
        }
    }
}

pub struct PlivoCodec {
    audio: Audio,
    rate: u32,
    stream_id: Option<String>,
    b64_buf: Vec<u8>,
}

impl Default for PlivoCodec {
    fn default() -> Self {
        Self { audio: Audio::Mulaw, rate: 8000, stream_id: None, b64_buf: Vec::with_capacity(1024) }
    }
}

impl PlivoCodec {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Outbound half: `playAudio`, `checkpoint` (mark) and `clearAudio` for one stream.
pub struct PlivoEncoder {
    stream_id: String,
    audio: Audio,
    rate: u32,
    /// `playAudio` up to the opening quote of the payload; fixed for the stream.
    media_prefix: String,
    raw: Vec<u8>,
    text: super::MediaText,
}

impl PlivoEncoder {
    fn new(stream_id: String, audio: Audio, rate: u32) -> Self {
        let media_prefix = format!(
            r#"{{"event":"playAudio","streamId":{},"media":{{"contentType":"{}","sampleRate":{},"payload":""#,
            Value::String(stream_id.clone()),
            audio.content_type(),
            rate
        );
        Self { stream_id, audio, rate, media_prefix, raw: Vec::with_capacity(1024), text: super::MediaText::new() }
    }
}

/// Only what every frame needs; `start` is re-read in full (it is sent once).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<MediaIn<'a>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    dtmf: Option<Value>,
    #[serde(default)]
    digit: Option<Value>,
}

#[derive(Deserialize)]
struct MediaIn<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
    #[serde(default, borrow)]
    track: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StartFrame {
    #[serde(default)]
    start: Option<StartIn>,
    #[serde(rename = "streamId", default)]
    stream_id: Option<String>,
    #[serde(default)]
    extra_headers: Option<Value>,
}

#[derive(Deserialize)]
struct StartIn {
    #[serde(rename = "streamId", default)]
    stream_id: Option<String>,
    #[serde(rename = "callId", default)]
    call_id: Option<String>,
    #[serde(rename = "mediaFormat", default)]
    media_format: Option<MediaFormat>,
}

#[derive(Deserialize)]
struct MediaFormat {
    #[serde(default)]
    encoding: String,
    #[serde(rename = "sampleRate", default)]
    sample_rate: Option<Value>,
}

/// µ-law 8 kHz when `mediaFormat` is absent (what our XML asks for). The encoding may carry a
/// `;rate=` suffix like the XML `contentType`.
fn audio_format(f: Option<&MediaFormat>) -> Result<(Audio, u32), TransportError> {
    let Some(f) = f else {
        return Ok((Audio::Mulaw, 8000));
    };
    let enc = f.encoding.to_ascii_lowercase();
    let mut parts = enc.split(';').map(str::trim);
    let base = parts.next().unwrap_or_default();
    let suffix_rate = parts.find_map(|p| p.strip_prefix("rate=")?.parse().ok());
    let rate = f.sample_rate.as_ref().and_then(lenient::rate).or(suffix_rate).unwrap_or(8000);
    let audio = match base {
        "" | "audio/x-mulaw" => Audio::Mulaw,
        "audio/x-l16" => Audio::L16,
        _ => return Err(unsupported(&f.encoding, rate)),
    };
    let ok = match audio {
        Audio::Mulaw => rate == 8000,
        Audio::L16 => rate == 8000 || rate == 16000,
    };
    if ok {
        Ok((audio, rate))
    } else {
        Err(unsupported(&f.encoding, rate))
    }
}

fn unsupported(encoding: &str, rate: u32) -> TransportError {
    TransportError::UnsupportedFormat(format!("{} @ {} Hz", lenient::clip(encoding, 30), rate))
}

/// `extra_headers` is set as `k=v,k2=v2` and delivered as `"k=v;k2=v2"`; both separators and an
/// object are accepted.
fn extra_headers(v: Value, out: &mut HashMap<String, String>) {
    match v {
        Value::String(s) => {
            for pair in s.split([';', ',']) {
                if let Some((k, v)) = pair.split_once('=') {
                    let k = k.trim();
                    if !k.is_empty() {
                        out.insert(k.to_string(), v.trim().to_string());
                    }
                }
            }
        }
        other => lenient::params(other, out),
    }
}

impl PlivoCodec {
    fn start(&mut self, text: &str) -> Result<Inbound, TransportError> {
        let frame: StartFrame = serde_json::from_str(text).map_err(|e| TransportError::BadJson(e.to_string()))?;
        let start = frame.start.ok_or(TransportError::MissingField("start"))?;
        let (audio, rate) = audio_format(start.media_format.as_ref())?;
        let stream_id = start.stream_id.or(frame.stream_id).ok_or(TransportError::MissingField("streamId"))?;
        let mut params = HashMap::new();
        if let Some(h) = frame.extra_headers {
            extra_headers(h, &mut params);
        }
        self.audio = audio;
        self.rate = rate;
        self.stream_id = Some(stream_id.clone());
        Ok(Inbound::Start(StartInfo { stream_id, call_id: start.call_id, params }))
    }
}

impl WireCodec for PlivoCodec {
    fn gateway(&self) -> &'static str {
        "plivo"
    }

    fn decode(&mut self, msg: &Message, pcm: &mut Vec<i16>) -> Result<Inbound, TransportError> {
        let (text, env) = match super::json_message::<Envelope<'_>>(msg) {
            Ok(m) => m,
            Err(other) => return other,
        };
        match env.event.as_ref() {
            "start" => self.start(text),
            "media" => {
                let media = env.media.ok_or(TransportError::MissingField("media"))?;
                if self.stream_id.is_none() {
                    return Err(TransportError::MediaBeforeStart);
                }
                if media.track.as_deref().is_some_and(|t| t != "inbound" && t != "inbound_track") {
                    return Ok(Inbound::Ignore);
                }
                self.b64_buf.clear();
                base64_simd::STANDARD
                    .decode_append(media.payload.as_bytes(), &mut self.b64_buf)
                    .map_err(|_| TransportError::BadBase64)?;
                match self.audio {
                    Audio::Mulaw => media::g711::decode_ulaw_into(&self.b64_buf, pcm),
                    Audio::L16 => media::l16::decode_le_into(&self.b64_buf, pcm)
                        .map_err(|e| TransportError::BadAudio(e.to_string()))?,
                }
                Ok(Inbound::Audio)
            }
            "dtmf" => {
                let digit = match env.dtmf {
                    Some(Value::Object(mut o)) => o.remove("digit"),
                    Some(v @ Value::String(_)) => Some(v),
                    _ => None,
                }
                .or(env.digit)
                .ok_or(TransportError::MissingField("dtmf.digit"))?;
                Ok(Inbound::Dtmf(lenient::stringify(digit)))
            }
            "playedStream" => Ok(Inbound::Mark(env.name.ok_or(TransportError::MissingField("name"))?)),
            "clearedAudio" => Ok(Inbound::Ignore),
            // Not in the current reference; older streams and some clients still send it.
            "stop" => Ok(Inbound::Stop),
            other => Err(TransportError::UnknownEvent(lenient::clip(other, 40))),
        }
    }

    fn input_rate(&self) -> u32 {
        self.rate
    }

    fn encoder(&self) -> Box<dyn WireEncoder> {
        Box::new(PlivoEncoder::new(self.stream_id.clone().unwrap_or_default(), self.audio, self.rate))
    }
}

const MEDIA_SUFFIX: &str = r#""}}"#;

impl WireEncoder for PlivoEncoder {
    fn output_rate(&self) -> u32 {
        self.rate
    }

    /// Queues outbound media and drops the queue on `clear`.
    fn lead(&self) -> media::Lead {
        media::Lead::QUEUED
    }

    fn encode_audio(&mut self, frame: &[i16]) -> Message {
        match self.audio {
            Audio::Mulaw => media::g711::encode_ulaw_into(frame, &mut self.raw),
            Audio::L16 => media::l16::encode_le_into(frame, &mut self.raw),
        }
        self.text.message(&self.media_prefix, &self.raw, MEDIA_SUFFIX)
    }

    fn encode_clear(&self) -> Option<Message> {
        let v = serde_json::json!({"event": "clearAudio", "streamId": self.stream_id});
        Some(Message::Text(v.to_string().into()))
    }

    fn encode_mark(&self, name: &str) -> Option<Message> {
        let v = serde_json::json!({"event": "checkpoint", "streamId": self.stream_id, "name": name});
        Some(Message::Text(v.to_string().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_util::*;
    use serde_json::json;

    const START: &str = r#"{"event":"start","sequenceNumber":1,"start":{"callId":"c8c9f4d6-1111-2222-3333-444455556666","streamId":"b3e1d0e2-aaaa-bbbb-cccc-ddddeeeeffff","accountId":"MA123","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}},"extra_headers":"agent=a1;lang=en"}"#;

    #[test]
    fn decodes_a_call() {
        let mut c = PlivoCodec::new();
        let mut pcm = Vec::new();
        let Ok(Inbound::Start(info)) = c.decode(&text(START), &mut pcm) else { panic!("start") };
        assert_eq!(info.stream_id, "b3e1d0e2-aaaa-bbbb-cccc-ddddeeeeffff");
        assert_eq!(info.call_id.as_deref(), Some("c8c9f4d6-1111-2222-3333-444455556666"));
        assert_eq!(info.params.get("agent").map(String::as_str), Some("a1"));
        assert_eq!(info.params.get("lang").map(String::as_str), Some("en"));
        assert_eq!(c.input_rate(), 8000);
        let media = r#"{"event":"media","sequenceNumber":42,"streamId":"b3e1","media":{"track":"inbound","timestamp":"1717000000020","chunk":41,"payload":"/wCAfw=="},"extra_headers":"agent=a1;lang=en"}"#;
        assert_eq!(c.decode(&text(media), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm, vec![0, -32124, 32124, 0]);
        assert_eq!(
            c.decode(
                &text(
                    r#"{"event":"dtmf","sequenceNumber":43,"streamId":"b3e1","dtmf":{"track":"inbound","digit":"7"}}"#
                ),
                &mut pcm
            ),
            Ok(Inbound::Dtmf("7".into()))
        );
        assert_eq!(
            c.decode(&text(r#"{"event":"playedStream","sequenceNumber":44,"streamId":"b3e1","name":"t1"}"#), &mut pcm),
            Ok(Inbound::Mark("t1".into()))
        );
        assert_eq!(
            c.decode(&text(r#"{"event":"clearedAudio","sequenceNumber":45,"streamId":"b3e1"}"#), &mut pcm),
            Ok(Inbound::Ignore)
        );
        assert_eq!(c.decode(&text(r#"{"event":"stop"}"#), &mut pcm), Ok(Inbound::Stop));
    }

    #[test]
    fn l16_streams_decode_and_play_l16() {
        let mut c = PlivoCodec::new();
        let mut pcm = Vec::new();
        let start = START.replace(
            r#""encoding":"audio/x-mulaw","sampleRate":8000"#,
            r#""encoding":"audio/x-l16","sampleRate":16000"#,
        );
        assert!(matches!(c.decode(&text(&start), &mut pcm), Ok(Inbound::Start(_))));
        assert_eq!(c.input_rate(), 16000);
        // Little-endian 0x0102, -2.
        let media = r#"{"event":"media","media":{"track":"inbound","payload":"AgH+/w=="}}"#;
        assert_eq!(c.decode(&text(media), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm, vec![0x0102, -2]);
        let mut enc = c.encoder();
        assert_eq!(enc.output_rate(), 16000);
        let v = json_of(enc.encode_audio(&[0x0102, -2]));
        assert_eq!(v["media"]["contentType"], "audio/x-l16");
        assert_eq!(v["media"]["sampleRate"], 16000);
        assert_eq!(v["media"]["payload"], "AgH+/w==");
    }

    #[test]
    fn bad_input_is_typed() {
        let mut c = PlivoCodec::new();
        let mut pcm = Vec::new();
        let code = |r: Result<Inbound, TransportError>| r.err().map(|e| e.code());
        let media = r#"{"event":"media","media":{"payload":"/w=="}}"#;
        assert_eq!(code(c.decode(&text(media), &mut pcm)), Some("media_before_start"));
        assert_eq!(code(c.decode(&text("[1,"), &mut pcm)), Some("bad_json"));
        assert_eq!(code(c.decode(&text(r#"{"event":"playAudio"}"#), &mut pcm)), Some("unknown_event"));
        assert_eq!(code(c.decode(&Message::Binary(vec![0; 4].into()), &mut pcm)), Some("binary_not_allowed"));
        assert_eq!(
            code(c.decode(&text(r#"{"event":"start","start":{"callId":"c"}}"#), &mut pcm)),
            Some("missing_field")
        );
        let opus = START.replace("audio/x-mulaw", "audio/opus");
        assert_eq!(code(c.decode(&text(&opus), &mut pcm)), Some("unsupported_format"));
        let mulaw16 = START.replace("8000", "16000");
        assert_eq!(code(c.decode(&text(&mulaw16), &mut pcm)), Some("unsupported_format"));
        assert_eq!(code(c.decode(&text(r#"{"event":"playedStream"}"#), &mut pcm)), Some("missing_field"));
        assert_eq!(code(c.decode(&text(r#"{"event":"dtmf","dtmf":{}}"#), &mut pcm)), Some("missing_field"));

        assert!(matches!(c.decode(&text(START), &mut pcm), Ok(Inbound::Start(_))));
        assert_eq!(
            code(c.decode(&text(r#"{"event":"media","media":{"payload":"@@"}}"#), &mut pcm)),
            Some("bad_base64")
        );
        let outbound = r#"{"event":"media","media":{"track":"outbound","payload":"/w=="}}"#;
        assert_eq!(c.decode(&text(outbound), &mut pcm), Ok(Inbound::Ignore));
    }

    #[test]
    fn encodes_play_checkpoint_and_clear() {
        let mut c = PlivoCodec::new();
        let mut pcm = Vec::new();
        let start = START.replace("b3e1d0e2-aaaa-bbbb-cccc-ddddeeeeffff", "S\\\"1");
        assert!(matches!(c.decode(&text(&start), &mut pcm), Ok(Inbound::Start(_))));
        let mut enc = c.encoder();
        assert_eq!(enc.output_rate(), 8000);
        assert_eq!(
            json_of(enc.encode_audio(&[0, 0])),
            json!({"event": "playAudio", "streamId": "S\"1",
                   "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": "//8="}})
        );
        assert_eq!(
            json_of(enc.encode_mark("t1").unwrap()),
            json!({"event": "checkpoint", "streamId": "S\"1", "name": "t1"})
        );
        assert_eq!(json_of(enc.encode_clear().unwrap()), json!({"event": "clearAudio", "streamId": "S\"1"}));
        assert!(enc.encode_error("x", "y").is_none());
    }
}
