//! Twilio Media Streams, bidirectional (`<Connect><Stream>`): JSON text frames with an `event`
//! field; audio is base64 µ-law 8 kHz mono in 20 ms frames. See shared/protocols/telephony.md A1.

use super::{Inbound, StartInfo, TransportError, WireCodec, WireEncoder};
use axum::extract::ws::Message;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;

#[derive(Default)]
pub struct TwilioCodec {
    stream_sid: String,
    b64_buf: Vec<u8>,
}

/// Outbound half: `media`, `mark` and `clear` for one stream.
pub struct TwilioEncoder {
    stream_sid: String,
    ulaw_buf: Vec<u8>,
    /// The media message up to its payload, stream id JSON-escaped once per stream.
    media_prefix: String,
    text: super::MediaText,
}

impl TwilioEncoder {
    fn new(stream_sid: String) -> Self {
        let media_prefix = format!(
            r#"{{"event":"media","streamSid":{},"media":{{"payload":""#,
            serde_json::Value::from(stream_sid.as_str())
        );
        Self { stream_sid, ulaw_buf: Vec::with_capacity(160), media_prefix, text: super::MediaText::new() }
    }
}

impl TwilioCodec {
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<MediaIn<'a>>,
    #[serde(default)]
    start: Option<StartIn>,
    #[serde(default)]
    mark: Option<MarkIn>,
    #[serde(default)]
    dtmf: Option<DtmfIn>,
    #[serde(rename = "streamSid", default)]
    stream_sid: Option<String>,
}

#[derive(Deserialize)]
struct MediaIn<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
    #[serde(default, borrow)]
    track: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StartIn {
    #[serde(rename = "streamSid", default)]
    stream_sid: Option<String>,
    #[serde(rename = "callSid", default)]
    call_sid: Option<String>,
    #[serde(rename = "customParameters", default)]
    custom_parameters: HashMap<String, String>,
    #[serde(rename = "mediaFormat", default)]
    media_format: Option<MediaFormat>,
}

#[derive(Deserialize)]
struct MediaFormat {
    #[serde(default)]
    encoding: String,
    #[serde(rename = "sampleRate", default)]
    sample_rate: u32,
}

#[derive(Deserialize)]
struct MarkIn {
    name: String,
}

#[derive(Deserialize)]
struct DtmfIn {
    digit: String,
}

impl WireCodec for TwilioCodec {
    fn gateway(&self) -> &'static str {
        "twilio"
    }

    fn decode(&mut self, msg: &Message, pcm: &mut Vec<i16>) -> Result<Inbound, TransportError> {
        let (_, env) = match super::json_message::<Envelope<'_>>(msg) {
            Ok(m) => m,
            Err(other) => return other,
        };
        match env.event.as_ref() {
            "connected" => Ok(Inbound::Connected),
            "start" => {
                let start = env.start.ok_or(TransportError::MissingField("start"))?;
                if let Some(f) = &start.media_format {
                    if !f.encoding.is_empty() && f.encoding != "audio/x-mulaw"
                        || f.sample_rate != 0 && f.sample_rate != 8000
                    {
                        return Err(TransportError::UnsupportedFormat(format!(
                            "{} @ {} Hz",
                            f.encoding, f.sample_rate
                        )));
                    }
                }
                let sid = start.stream_sid.or(env.stream_sid).ok_or(TransportError::MissingField("streamSid"))?;
                self.stream_sid = sid.clone();
                Ok(Inbound::Start(StartInfo {
                    stream_id: sid,
                    call_id: start.call_sid,
                    params: start.custom_parameters,
                }))
            }
            "media" => {
                let media = env.media.ok_or(TransportError::MissingField("media"))?;
                if media.track.as_deref().is_some_and(|t| t != "inbound" && t != "inbound_track") {
                    return Ok(Inbound::Ignore);
                }
                self.b64_buf.clear();
                base64_simd::STANDARD
                    .decode_append(media.payload.as_bytes(), &mut self.b64_buf)
                    .map_err(|_| TransportError::BadBase64)?;
                media::g711::decode_ulaw_into(&self.b64_buf, pcm);
                Ok(Inbound::Audio)
            }
            "dtmf" => Ok(Inbound::Dtmf(env.dtmf.ok_or(TransportError::MissingField("dtmf"))?.digit)),
            "mark" => Ok(Inbound::Mark(env.mark.ok_or(TransportError::MissingField("mark"))?.name)),
            "stop" => Ok(Inbound::Stop),
            other => Err(TransportError::UnknownEvent(other.chars().take(40).collect())),
        }
    }

    fn input_rate(&self) -> u32 {
        8000
    }

    fn encoder(&self) -> Box<dyn WireEncoder> {
        Box::new(TwilioEncoder::new(self.stream_sid.clone()))
    }
}

impl WireEncoder for TwilioEncoder {
    fn output_rate(&self) -> u32 {
        8000
    }

    /// Queues outbound media and drops the queue on `clear`.
    fn lead(&self) -> media::Lead {
        media::Lead::QUEUED
    }

    fn encode_audio(&mut self, frame: &[i16]) -> Message {
        media::g711::encode_ulaw_into(frame, &mut self.ulaw_buf);
        self.text.message(&self.media_prefix, &self.ulaw_buf, r#""}}"#)
    }

    fn encode_clear(&self) -> Option<Message> {
        Some(Message::Text(serde_json::json!({"event": "clear", "streamSid": self.stream_sid}).to_string().into()))
    }

    fn encode_mark(&self, name: &str) -> Option<Message> {
        let v = serde_json::json!({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}});
        Some(Message::Text(v.to_string().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_util::*;

    #[test]
    fn decodes_a_call() {
        let mut c = TwilioCodec::new();
        let mut pcm = Vec::new();
        assert_eq!(
            c.decode(&text(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#), &mut pcm),
            Ok(Inbound::Connected)
        );
        let start = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"streamSid":"MZ1","accountSid":"AC1","callSid":"CA1","tracks":["inbound"],"customParameters":{"agent":"a1"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
        let Ok(Inbound::Start(info)) = c.decode(&text(start), &mut pcm) else { panic!("start") };
        assert_eq!(info.call_id.as_deref(), Some("CA1"));
        assert_eq!(info.params.get("agent").map(String::as_str), Some("a1"));
        let media = r#"{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"/wCAfw=="}}"#;
        assert_eq!(c.decode(&text(media), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm, vec![0, -32124, 32124, 0]);
        assert_eq!(
            c.decode(&text(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"t1"}}"#), &mut pcm),
            Ok(Inbound::Mark("t1".into()))
        );
        assert_eq!(c.decode(&text(r#"{"event":"stop","streamSid":"MZ1","stop":{}}"#), &mut pcm), Ok(Inbound::Stop));
    }

    #[test]
    fn bad_input_is_typed() {
        let mut c = TwilioCodec::new();
        let mut pcm = Vec::new();
        let code = |r: Result<Inbound, TransportError>| r.err().map(|e| e.code());
        assert_eq!(code(c.decode(&text("{not json"), &mut pcm)), Some("bad_json"));
        assert_eq!(code(c.decode(&text(r#"{"event":"dance"}"#), &mut pcm)), Some("unknown_event"));
        assert_eq!(
            code(c.decode(&text(r#"{"event":"media","media":{"payload":"!!!"}}"#), &mut pcm)),
            Some("bad_base64")
        );
        assert_eq!(code(c.decode(&text(r#"{"event":"media"}"#), &mut pcm)), Some("missing_field"));
        assert_eq!(code(c.decode(&Message::Binary(vec![1, 2].into()), &mut pcm)), Some("binary_not_allowed"));
    }

    #[test]
    fn encodes_media_clear_and_mark() {
        let mut c = TwilioEncoder::new("MZ9".into());
        let Message::Text(t) = c.encode_audio(&[0, 0]) else { panic!() };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!(v["event"], "media");
        assert_eq!(v["streamSid"], "MZ9");
        assert_eq!(v["media"]["payload"], "//8=");
        let Some(Message::Text(t)) = c.encode_clear() else { panic!() };
        assert_eq!(t.as_str(), r#"{"event":"clear","streamSid":"MZ9"}"#);
    }

    #[test]
    fn a_stream_sid_cannot_break_out_of_its_string() {
        let mut c = TwilioEncoder::new(r#"MZ","event":"stop"#.into());
        let Message::Text(t) = c.encode_audio(&[0, 0]) else { panic!() };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!((v["event"].as_str(), v["streamSid"].as_str()), (Some("media"), Some(r#"MZ","event":"stop"#)));
    }
}
