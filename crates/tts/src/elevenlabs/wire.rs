//! ElevenLabs stream-input JSON messages (protocols/tts.md C1), shared with the simulator.

use crate::socket;
use crate::{Alignment, TtsError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Minimum buffered characters before each successive generation; the first entry is the
/// provider's minimum (50), so the first audio comes as early as the server allows.
pub(crate) const CHUNK_LENGTH_SCHEDULE: [u32; 4] = [50, 90, 120, 150];

/// First message: opens the stream. Not `Debug`: it carries the key.
#[derive(Serialize)]
pub(crate) struct Bos<'a> {
    pub text: &'static str,
    pub voice_settings: VoiceSettings,
    pub generation_config: GenerationConfig,
    #[serde(rename = "xi-api-key")]
    pub key: &'a str,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VoiceSettings {
    pub stability: f32,
    pub similarity_boost: f32,
    pub style: f32,
    pub use_speaker_boost: bool,
    pub speed: f32,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        Self { stability: 0.5, similarity_boost: 0.8, style: 0.0, use_speaker_boost: true, speed: 1.0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GenerationConfig {
    pub chunk_length_schedule: Vec<u32>,
}

/// Character timing as the provider spells it; LiveKit also meets the `chars…` spellings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireAlignment {
    #[serde(default)]
    pub chars: Vec<String>,
    #[serde(default, rename = "charStartTimesMs", alias = "charsStartTimesMs")]
    pub start_ms: Vec<f64>,
    #[serde(default, rename = "charDurationsMs", alias = "charsDurationsMs")]
    pub duration_ms: Vec<f64>,
}

impl WireAlignment {
    /// Keeps only the index range all three arrays share, so a short array cannot misalign.
    fn into_alignment(self) -> Option<Alignment> {
        let n = self.chars.len().min(self.start_ms.len()).min(self.duration_ms.len());
        if n == 0 {
            return None;
        }
        let ms = |v: f64| {
            if v.is_finite() {
                v.round().clamp(0.0, f64::from(u32::MAX)) as u32
            } else {
                0
            }
        };
        Some(Alignment {
            chars: self.chars.iter().take(n).map(|s| s.chars().next().unwrap_or(' ')).collect(),
            start_ms: self.start_ms.iter().take(n).map(|&v| ms(v)).collect(),
            duration_ms: self.duration_ms.iter().take(n).map(|&v| ms(v)).collect(),
        })
    }
}

#[derive(Deserialize)]
struct ServerMsg {
    #[serde(default)]
    audio: Option<String>,
    #[serde(default, rename = "isFinal")]
    is_final: Option<bool>,
    #[serde(default)]
    alignment: Option<WireAlignment>,
    #[serde(default, rename = "normalizedAlignment")]
    normalized_alignment: Option<WireAlignment>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    /// Multi-context only; LiveKit meets both spellings.
    #[serde(default, rename = "contextId", alias = "context_id")]
    context_id: Option<String>,
}

/// One server message, decoded.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Incoming {
    pub audio: Option<(Bytes, Option<Alignment>)>,
    pub is_final: bool,
    pub error: Option<TtsError>,
    /// The multi-context stream this message belongs to.
    pub context_id: Option<String>,
}

/// Parses one text frame. Audio is s16le for `pcm_*` formats and passes through untouched.
pub(crate) fn parse(text: &str) -> Result<Incoming, TtsError> {
    let msg: ServerMsg = serde_json::from_str(text).map_err(socket::bad_json)?;
    let mut out =
        Incoming { is_final: msg.is_final.unwrap_or(false), context_id: msg.context_id, ..Default::default() };
    if let Some(err) = msg.error.filter(|e| !e.is_null()) {
        out.error = Some(provider_error(&err, msg.message.as_deref()));
        return Ok(out);
    }
    if let Some(b64) = msg.audio.filter(|a| !a.is_empty()) {
        let pcm = socket::b64_audio(&b64)?;
        let alignment = msg
            .alignment
            .and_then(WireAlignment::into_alignment)
            .or_else(|| msg.normalized_alignment.and_then(WireAlignment::into_alignment));
        out.audio = Some((pcm, alignment));
    }
    Ok(out)
}

/// `error` is a string code (`invalid_api_key`) or an object with `status`/`message`.
fn provider_error(err: &serde_json::Value, message: Option<&str>) -> TtsError {
    let code = match err {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Object(o) => {
            o.get("status").or_else(|| o.get("code")).and_then(|v| v.as_str()).unwrap_or("")
        }
        _ => "",
    };
    let message = message.or_else(|| err.get("message").and_then(|v| v.as_str())).unwrap_or(code);
    match code {
        "invalid_api_key" | "unauthorized" | "missing_api_key" => TtsError::Unauthorized,
        "too_many_concurrent_requests" | "rate_limit_exceeded" | "system_busy" => TtsError::RateLimited,
        _ if code.is_empty() || code == message => TtsError::Provider { message: message.to_string() },
        _ => TtsError::Provider { message: format!("{code}: {message}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn audio_with_alignment_decodes() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8, 0, 2, 0]);
        let text = format!(
            r#"{{"audio":"{b64}","alignment":{{"chars":["H","i"],"charStartTimesMs":[0,50],"charDurationsMs":[50,50]}},"normalizedAlignment":null}}"#
        );
        let got = parse(&text).unwrap();
        let (pcm, al) = got.audio.unwrap();
        assert_eq!(&pcm[..], &[1, 0, 2, 0]);
        assert_eq!(al.unwrap(), Alignment { chars: vec!['H', 'i'], start_ms: vec![0, 50], duration_ms: vec![50, 50] });
        assert!(!got.is_final);
    }

    #[test]
    fn tolerates_chars_spelling_and_normalized_fallback() {
        let text = r#"{"audio":"AAA=","alignment":null,"normalizedAlignment":{"chars":["a"],"charsStartTimesMs":[10.4],"charsDurationsMs":[20]}}"#;
        let (_, al) = parse(text).unwrap().audio.unwrap();
        assert_eq!(al.unwrap(), Alignment { chars: vec!['a'], start_ms: vec![10], duration_ms: vec![20] });
    }

    #[test]
    fn final_and_errors() {
        let fin = parse(r#"{"audio":null,"isFinal":true,"alignment":null}"#).unwrap();
        assert!(fin.is_final && fin.audio.is_none());
        let e = parse(r#"{"error":"invalid_api_key","message":"Invalid API key","code":1008}"#).unwrap();
        assert_eq!(e.error, Some(TtsError::Unauthorized));
        let e = parse(r#"{"error":"input_timeout_exceeded","message":"no text"}"#).unwrap();
        assert_eq!(e.error, Some(TtsError::Provider { message: "input_timeout_exceeded: no text".into() }));
        assert!(matches!(parse("{not json"), Err(TtsError::Protocol(_))));
        let fin = parse(r#"{"isFinal":true,"contextId":"c1"}"#).unwrap();
        assert_eq!(fin.context_id.as_deref(), Some("c1"));
        assert_eq!(parse(r#"{"error":"x","context_id":"c2"}"#).unwrap().context_id.as_deref(), Some("c2"));
        assert!(matches!(parse(r#"{"audio":"!!"}"#), Err(TtsError::Protocol(_))));
    }
}
