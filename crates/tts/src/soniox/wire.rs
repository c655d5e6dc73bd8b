//! Soniox real-time TTS JSON messages (protocols/llm-more.md E4). Server messages carry no
//! `type`: the fields present say what they are.

use crate::socket;
use crate::{Alignment, TtsError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub(crate) const KEEP_ALIVE: &str = r#"{"keep_alive":true}"#;

/// Opens one stream on the socket. Not `Debug`: it carries the key.
#[derive(Serialize)]
pub(crate) struct Config<'a> {
    pub api_key: &'a str,
    pub stream_id: &'a str,
    pub model: &'a str,
    pub language: &'a str,
    pub voice: &'a str,
    pub audio_format: &'static str,
    pub sample_rate: u32,
    pub return_timestamps: bool,
}

pub(crate) fn text(stream_id: &str, text: &str, end: bool) -> String {
    serde_json::json!({"text": text, "text_end": end, "stream_id": stream_id}).to_string()
}

pub(crate) fn cancel(stream_id: &str) -> String {
    serde_json::json!({"stream_id": stream_id, "cancel": true}).to_string()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ServerMsg {
    stream_id: Option<String>,
    audio: Option<String>,
    terminated: Option<bool>,
    timestamps: Option<Timestamps>,
    error_code: Option<i64>,
    error_type: Option<String>,
    error_message: Option<String>,
}

/// Parallel per-character arrays, seconds from the start of the stream's audio.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Timestamps {
    characters: Vec<String>,
    character_start_times_seconds: Vec<f64>,
    character_end_times_seconds: Vec<f64>,
}

impl Timestamps {
    fn into_alignment(self) -> Option<Alignment> {
        let ms = |s: f64| if s.is_finite() { (s * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32 } else { 0 };
        let mut al = Alignment::default();
        for (i, (c, &start)) in self.characters.iter().zip(&self.character_start_times_seconds).enumerate() {
            let end = self.character_end_times_seconds.get(i).copied().unwrap_or(start);
            al.chars.push(c.chars().next().unwrap_or(' '));
            al.start_ms.push(ms(start));
            al.duration_ms.push(ms(end).saturating_sub(ms(start)));
        }
        (!al.chars.is_empty()).then_some(al)
    }
}

/// One server message, decoded.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Incoming {
    pub stream_id: Option<String>,
    /// PCM (may be empty on the closing `audio_end`) and stream-relative timings.
    pub audio: Option<(Bytes, Option<Alignment>)>,
    pub terminated: bool,
    pub error: Option<TtsError>,
}

pub(crate) fn parse(text: &str) -> Result<Incoming, TtsError> {
    let msg: ServerMsg = serde_json::from_str(text).map_err(socket::bad_json)?;
    let mut out =
        Incoming { stream_id: msg.stream_id, terminated: msg.terminated.unwrap_or(false), ..Default::default() };
    if let Some(code) = msg.error_code {
        let message = msg.error_message.or(msg.error_type).unwrap_or_default();
        out.error = Some(classify(code, message));
        return Ok(out);
    }
    if let Some(b64) = msg.audio {
        out.audio = Some((socket::b64_audio(&b64)?, msg.timestamps.and_then(Timestamps::into_alignment)));
    }
    Ok(out)
}

/// 401 = bad key; 402 = balance or usage limit; 429 = rate limit (E7).
fn classify(code: i64, message: String) -> TtsError {
    match code {
        401 | 403 => TtsError::Unauthorized,
        429 => TtsError::RateLimited,
        _ => TtsError::Provider { message: format!("{code}: {message}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn audio_timestamps_terminated_and_errors() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8, 0]);
        let text = format!(
            r#"{{"stream_id":"s1","audio":"{b64}","audio_end":false,"timestamps":{{"characters":["H","i"],"character_start_times_seconds":[0.0,0.1],"character_end_times_seconds":[0.1,0.25]}}}}"#
        );
        let got = parse(&text).unwrap();
        assert_eq!(got.stream_id.as_deref(), Some("s1"));
        let (pcm, al) = got.audio.unwrap();
        assert_eq!(&pcm[..], &[1, 0]);
        assert_eq!(
            al.unwrap(),
            Alignment { chars: vec!['H', 'i'], start_ms: vec![0, 100], duration_ms: vec![100, 150] }
        );

        assert!(parse(r#"{"terminated":true,"stream_id":"s1"}"#).unwrap().terminated);
        let e = parse(r#"{"stream_id":"s1","error_code":401,"error_message":"Invalid API key."}"#).unwrap();
        assert_eq!(e.error, Some(TtsError::Unauthorized));
        let e = parse(r#"{"stream_id":"s1","error_code":400,"error_type":"bad_request","error_message":"Missing required field: model"}"#)
            .unwrap();
        assert_eq!(e.error, Some(TtsError::Provider { message: "400: Missing required field: model".into() }));
        assert!(matches!(parse("[1]"), Err(TtsError::Protocol(_))));
    }
}
