//! Telnyx Media Streaming (Call Control `streaming_start` or TeXML `<Stream>`), bidirectional in
//! `rtp` mode: snake_case JSON text frames with an `event` field; audio is the base64 RTP payload
//! (no RTP header) in the codec named by `start.media_format`. See shared/protocols/telephony.md A2.
//!
//! Playback is sent in the inbound codec and rate, so the stream must be started with
//! `stream_bidirectional_mode: "rtp"` and `stream_bidirectional_codec` (and, for L16,
//! `stream_bidirectional_sampling_rate`) equal to the inbound `stream_codec`.

use super::lenient;
use super::{Inbound, StartInfo, TransportError, WireCodec, WireEncoder};
use axum::extract::ws::Message;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// L16 rates Telnyx offers for bidirectional RTP.
const L16_RATES: [u32; 5] = [8000, 16000, 22050, 24000, 48000];

/// RTP payload formats we can turn into PCM without a codec library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audio {
    Pcmu,
    Pcma,
    /// RTP L16 is network byte order (RFC 3551), big-endian.
    L16,
}

pub struct TelnyxCodec {
    audio: Audio,
    rate: u32,
    started: bool,
    b64_buf: Vec<u8>,
}

impl Default for TelnyxCodec {
    fn default() -> Self {
        Self { audio: Audio::Pcmu, rate: 8000, started: false, b64_buf: Vec::with_capacity(1024) }
    }
}

impl TelnyxCodec {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Outbound half: `media` in the stream's codec, `mark` and `clear`. Telnyx frames carry no
/// stream id outbound.
pub struct TelnyxEncoder {
    audio: Audio,
    rate: u32,
    raw: Vec<u8>,
    text: super::MediaText,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<MediaIn<'a>>,
    #[serde(borrow, default)]
    stream_id: Option<Cow<'a, str>>,
    #[serde(default)]
    start: Option<StartIn>,
    #[serde(default)]
    mark: Option<MarkIn>,
    #[serde(default)]
    dtmf: Option<DtmfIn>,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
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
    #[serde(default)]
    call_control_id: Option<String>,
    #[serde(default)]
    stream_id: Option<String>,
    #[serde(default)]
    from: Option<Value>,
    #[serde(default)]
    to: Option<Value>,
    #[serde(default)]
    client_state: Option<Value>,
    #[serde(default)]
    custom_parameters: Option<Value>,
    #[serde(default)]
    media_format: Option<MediaFormat>,
}

#[derive(Deserialize)]
struct MediaFormat {
    #[serde(default)]
    encoding: String,
    #[serde(default)]
    sample_rate: Option<Value>,
}

#[derive(Deserialize)]
struct MarkIn {
    name: String,
}

#[derive(Deserialize)]
struct DtmfIn {
    digit: Value,
}

/// Codec and rate from `start.media_format`; PCMU 8 kHz when absent. Telnyx names codecs
/// (`PCMU`); some integrations report MIME names (`audio/x-mulaw`), so both are accepted.
fn audio_format(f: Option<&MediaFormat>) -> Result<(Audio, u32), TransportError> {
    let Some(f) = f else {
        return Ok((Audio::Pcmu, 8000));
    };
    let rate = f.sample_rate.as_ref().and_then(lenient::rate);
    let unsupported =
        || TransportError::UnsupportedFormat(format!("{} @ {} Hz", lenient::clip(&f.encoding, 20), rate.unwrap_or(0)));
    let audio = match f.encoding.to_ascii_lowercase().as_str() {
        "" | "default" | "pcmu" | "audio/x-mulaw" | "mulaw" | "ulaw" => Audio::Pcmu,
        "pcma" | "audio/x-alaw" | "alaw" => Audio::Pcma,
        "l16" | "audio/l16" | "linear16" => Audio::L16,
        _ => return Err(unsupported()),
    };
    let rate = rate.unwrap_or(8000);
    let ok = match audio {
        Audio::Pcmu | Audio::Pcma => rate == 8000,
        Audio::L16 => L16_RATES.contains(&rate),
    };
    if ok {
        Ok((audio, rate))
    } else {
        Err(unsupported())
    }
}

fn start_info(env: Envelope<'_>) -> Result<(StartInfo, Audio, u32), TransportError> {
    let start = env.start.ok_or(TransportError::MissingField("start"))?;
    let (audio, rate) = audio_format(start.media_format.as_ref())?;
    let mut params = HashMap::new();
    for (k, v) in [("from", start.from), ("to", start.to), ("client_state", start.client_state)] {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            params.insert(k.to_string(), lenient::stringify(v));
        }
    }
    // Custom parameters win over the call metadata above.
    if let Some(p) = start.custom_parameters {
        lenient::params(p, &mut params);
    }
    let stream_id = env
        .stream_id
        .map(Cow::into_owned)
        .or(start.stream_id)
        .or_else(|| start.call_control_id.clone())
        .ok_or(TransportError::MissingField("stream_id"))?;
    Ok((StartInfo { stream_id, call_id: start.call_control_id, params }, audio, rate))
}

/// The human part of an `error` frame, whose fields Telnyx does not document.
fn error_text(env: &Envelope<'_>) -> String {
    let v = env.payload.as_ref().or(env.error.as_ref());
    let text = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => ["detail", "title", "message", "reason"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| Value::Object(o.clone()).to_string()),
        Some(other) => other.to_string(),
        None => "unspecified".to_string(),
    };
    lenient::clip(&text, 200)
}

impl WireCodec for TelnyxCodec {
    fn gateway(&self) -> &'static str {
        "telnyx"
    }

    fn decode(&mut self, msg: &Message, pcm: &mut Vec<i16>) -> Result<Inbound, TransportError> {
        let (_, env) = match super::json_message::<Envelope<'_>>(msg) {
            Ok(m) => m,
            Err(other) => return other,
        };
        match env.event.as_ref() {
            "connected" => Ok(Inbound::Connected),
            "start" => {
                let (info, audio, rate) = start_info(env)?;
                self.audio = audio;
                self.rate = rate;
                self.started = true;
                Ok(Inbound::Start(info))
            }
            "media" => {
                let media = env.media.ok_or(TransportError::MissingField("media"))?;
                // Telnyx does not guarantee frame order; audio racing ahead of `start` is
                // dropped rather than refusing the call.
                if !self.started || media.track.as_deref().is_some_and(|t| t != "inbound" && t != "inbound_track") {
                    return Ok(Inbound::Ignore);
                }
                self.b64_buf.clear();
                base64_simd::STANDARD
                    .decode_append(media.payload.as_bytes(), &mut self.b64_buf)
                    .map_err(|_| TransportError::BadBase64)?;
                match self.audio {
                    Audio::Pcmu => media::g711::decode_ulaw_into(&self.b64_buf, pcm),
                    Audio::Pcma => media::g711::decode_alaw_into(&self.b64_buf, pcm),
                    Audio::L16 => media::l16::decode_be_into(&self.b64_buf, pcm)
                        .map_err(|e| TransportError::BadAudio(e.to_string()))?,
                }
                Ok(Inbound::Audio)
            }
            "dtmf" => {
                Ok(Inbound::Dtmf(lenient::stringify(env.dtmf.ok_or(TransportError::MissingField("dtmf"))?.digit)))
            }
            "mark" => Ok(Inbound::Mark(env.mark.ok_or(TransportError::MissingField("mark"))?.name)),
            "stop" => Ok(Inbound::Stop),
            "error" => Err(TransportError::GatewayError(error_text(&env))),
            other => Err(TransportError::UnknownEvent(lenient::clip(other, 40))),
        }
    }

    fn input_rate(&self) -> u32 {
        self.rate
    }

    fn encoder(&self) -> Box<dyn WireEncoder> {
        Box::new(TelnyxEncoder {
            audio: self.audio,
            rate: self.rate,
            raw: Vec::with_capacity(1024),
            text: super::MediaText::new(),
        })
    }
}

const MEDIA_PREFIX: &str = r#"{"event":"media","media":{"payload":""#;
const MEDIA_SUFFIX: &str = r#""}}"#;

impl WireEncoder for TelnyxEncoder {
    fn output_rate(&self) -> u32 {
        self.rate
    }

    /// Queues outbound media and drops the queue on `clear`.
    fn lead(&self) -> media::Lead {
        media::Lead::QUEUED
    }

    fn encode_audio(&mut self, frame: &[i16]) -> Message {
        match self.audio {
            Audio::Pcmu => media::g711::encode_ulaw_into(frame, &mut self.raw),
            Audio::Pcma => media::g711::encode_alaw_into(frame, &mut self.raw),
            Audio::L16 => media::l16::encode_be_into(frame, &mut self.raw),
        }
        self.text.message(MEDIA_PREFIX, &self.raw, MEDIA_SUFFIX)
    }

    fn encode_clear(&self) -> Option<Message> {
        Some(Message::Text(r#"{"event":"clear"}"#.into()))
    }

    fn encode_mark(&self, name: &str) -> Option<Message> {
        let v = serde_json::json!({"event": "mark", "mark": {"name": name}});
        Some(Message::Text(v.to_string().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::test_util::*;

    const START_PCMU: &str = r#"{"event":"start","sequence_number":"1","stream_id":"32de0dea-53cb-4b21-89a4-9e1819c043bc","start":{"user_id":"3e6f995f-85f7-4705-9741-53b116d28237","call_control_id":"v3:abc","call_session_id":"ff55a038","from":"+13122010094","to":"+13122123456","tags":["t1"],"client_state":"YWdlbnQ=","custom_parameters":{"agent":"a1","from":"override"},"media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}}"#;

    #[test]
    fn decodes_a_call() {
        let mut c = TelnyxCodec::new();
        let mut pcm = Vec::new();
        assert_eq!(c.decode(&text(r#"{"event":"connected","version":"1.0.0"}"#), &mut pcm), Ok(Inbound::Connected));
        let Ok(Inbound::Start(info)) = c.decode(&text(START_PCMU), &mut pcm) else { panic!("start") };
        assert_eq!(info.stream_id, "32de0dea-53cb-4b21-89a4-9e1819c043bc");
        assert_eq!(info.call_id.as_deref(), Some("v3:abc"));
        assert_eq!(info.params.get("agent").map(String::as_str), Some("a1"));
        assert_eq!(info.params.get("from").map(String::as_str), Some("override"));
        assert_eq!(info.params.get("to").map(String::as_str), Some("+13122123456"));
        assert_eq!(info.params.get("client_state").map(String::as_str), Some("YWdlbnQ="));
        assert_eq!(c.input_rate(), 8000);
        let media = r#"{"event":"media","sequence_number":"4","stream_id":"32de","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"/wCAfw=="}}"#;
        assert_eq!(c.decode(&text(media), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm, vec![0, -32124, 32124, 0]);
        let outbound = r#"{"event":"media","media":{"track":"outbound","payload":"AAAA"}}"#;
        assert_eq!(c.decode(&text(outbound), &mut pcm), Ok(Inbound::Ignore));
        assert_eq!(
            c.decode(&text(r#"{"event":"dtmf","stream_id":"32de","dtmf":{"digit":"5"}}"#), &mut pcm),
            Ok(Inbound::Dtmf("5".into()))
        );
        assert_eq!(
            c.decode(
                &text(r#"{"event":"mark","sequence_number":"9","stream_id":"32de","mark":{"name":"t1"}}"#),
                &mut pcm
            ),
            Ok(Inbound::Mark("t1".into()))
        );
        assert_eq!(
            c.decode(
                &text(r#"{"event":"stop","sequence_number":"10","stream_id":"32de","stop":{"user_id":"u","call_control_id":"v3:abc"}}"#),
                &mut pcm
            ),
            Ok(Inbound::Stop)
        );
        let Message::Text(m) = c.encoder().encode_audio(&[0]) else { panic!() };
        assert_eq!(m.as_str(), r#"{"event":"media","media":{"payload":"/w=="}}"#);
    }

    #[test]
    fn codec_follows_media_format() {
        let mut pcm = Vec::new();
        let mut c = TelnyxCodec::new();
        let start = START_PCMU.replace(r#""encoding":"PCMU""#, r#""encoding":"PCMA""#);
        assert!(matches!(c.decode(&text(&start), &mut pcm), Ok(Inbound::Start(_))));
        // A-law 0xD5 is the smallest positive step, 0x55 its negative.
        let media = r#"{"event":"media","media":{"track":"inbound","payload":"1VU="}}"#;
        assert_eq!(c.decode(&text(media), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm, vec![8, -8]);
        let Message::Text(m) = c.encoder().encode_audio(&[8, -8]) else { panic!() };
        assert!(m.as_str().contains(r#""payload":"1VU=""#));

        let mut c = TelnyxCodec::new();
        let start =
            START_PCMU.replace(r#""encoding":"PCMU","sample_rate":8000"#, r#""encoding":"L16","sample_rate":"16000""#);
        assert!(matches!(c.decode(&text(&start), &mut pcm), Ok(Inbound::Start(_))));
        assert_eq!(c.input_rate(), 16000);
        // Big-endian 0x0102, -2.
        let media = r#"{"event":"media","media":{"payload":"AQL//g=="}}"#;
        assert_eq!(c.decode(&text(media), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm, vec![0x0102, -2]);
        let mut enc = c.encoder();
        assert_eq!(enc.output_rate(), 16000);
        let v = json_of(enc.encode_audio(&[0x0102, -2]));
        assert_eq!(v["media"]["payload"], "AQL//g==");

        let mut c = TelnyxCodec::new();
        let no_format = r#"{"event":"start","stream_id":"s1","start":{"call_control_id":"v3:x"}}"#;
        assert!(matches!(c.decode(&text(no_format), &mut pcm), Ok(Inbound::Start(_))));
        assert_eq!(c.input_rate(), 8000);
    }

    #[test]
    fn bad_input_is_typed() {
        let mut c = TelnyxCodec::new();
        let mut pcm = Vec::new();
        let code = |r: Result<Inbound, TransportError>| r.err().map(|e| e.code());
        // Frame order is not guaranteed, so early audio is dropped, not fatal.
        let early = r#"{"event":"media","media":{"track":"inbound","payload":"/w=="}}"#;
        assert_eq!(c.decode(&text(early), &mut pcm), Ok(Inbound::Ignore));
        assert_eq!(code(c.decode(&text("{not json"), &mut pcm)), Some("bad_json"));
        assert_eq!(code(c.decode(&text(r#"{"event":"dance"}"#), &mut pcm)), Some("unknown_event"));
        assert_eq!(code(c.decode(&Message::Binary(vec![1, 2].into()), &mut pcm)), Some("binary_not_allowed"));
        assert_eq!(code(c.decode(&text(r#"{"event":"start","stream_id":"s"}"#), &mut pcm)), Some("missing_field"));
        let opus = START_PCMU.replace(r#""encoding":"PCMU""#, r#""encoding":"OPUS""#);
        assert_eq!(code(c.decode(&text(&opus), &mut pcm)), Some("unsupported_format"));
        let pcmu16k = START_PCMU.replace("8000", "16000");
        assert_eq!(code(c.decode(&text(&pcmu16k), &mut pcm)), Some("unsupported_format"));
        let err = c.decode(
            &text(r#"{"event":"error","payload":{"code":100002,"title":"Unknown error","detail":"stream failed"}}"#),
            &mut pcm,
        );
        assert_eq!(err, Err(TransportError::GatewayError("stream failed".into())));
        assert_eq!(code(c.decode(&text(r#"{"event":"error"}"#), &mut pcm)), Some("gateway_error"));

        assert!(matches!(c.decode(&text(START_PCMU), &mut pcm), Ok(Inbound::Start(_))));
        assert_eq!(
            code(c.decode(&text(r#"{"event":"media","media":{"payload":"!!!"}}"#), &mut pcm)),
            Some("bad_base64")
        );
        assert_eq!(code(c.decode(&text(r#"{"event":"media"}"#), &mut pcm)), Some("missing_field"));
        assert_eq!(c.decode(&Message::Close(None), &mut pcm), Ok(Inbound::Stop));
    }

    #[test]
    fn odd_l16_payload_is_bad_audio() {
        let mut c = TelnyxCodec::new();
        let mut pcm = Vec::new();
        let start = START_PCMU.replace(r#""encoding":"PCMU""#, r#""encoding":"L16""#);
        assert!(matches!(c.decode(&text(&start), &mut pcm), Ok(Inbound::Start(_))));
        let media = r#"{"event":"media","media":{"payload":"AQID"}}"#;
        assert_eq!(c.decode(&text(media), &mut pcm).err().map(|e| e.code()), Some("bad_audio"));
    }

    #[test]
    fn encodes_clear_and_mark() {
        let c = TelnyxCodec::new().encoder();
        let Some(Message::Text(t)) = c.encode_clear() else { panic!() };
        assert_eq!(t.as_str(), r#"{"event":"clear"}"#);
        let v = json_of(c.encode_mark("turn\"1").unwrap());
        assert_eq!(v, serde_json::json!({"event": "mark", "mark": {"name": "turn\"1"}}));
        assert!(c.encode_error("x", "y").is_none());
    }
}
