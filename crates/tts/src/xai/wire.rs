//! xAI streaming TTS JSON messages (protocols/llm-more.md E3.2).

use crate::socket;
use crate::{Alignment, TtsError};
use bytes::Bytes;
use serde::Deserialize;

pub(crate) const TEXT_DONE: &str = r#"{"type":"text.done"}"#;

/// `{"type":"text.delta","delta":…}`.
pub(crate) fn text_delta(text: &str) -> String {
    serde_json::json!({"type": "text.delta", "delta": text}).to_string()
}

#[derive(Deserialize)]
struct ServerMsg {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    audio_timestamps: Option<Timestamps>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Character timings in seconds from the utterance start: `graph_times[i] = [start, end]`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Timestamps {
    graph_chars: Vec<String>,
    graph_times: Vec<Vec<f64>>,
}

impl Timestamps {
    /// Keeps only the index range both arrays share, in ms from the utterance start.
    fn into_alignment(self) -> Option<Alignment> {
        let ms = |s: f64| if s.is_finite() { (s * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32 } else { 0 };
        let mut al = Alignment::default();
        for (c, t) in self.graph_chars.iter().zip(&self.graph_times) {
            let start = t.first().copied().unwrap_or(0.0);
            let end = t.get(1).copied().unwrap_or(start);
            al.chars.push(c.chars().next().unwrap_or(' '));
            al.start_ms.push(ms(start));
            al.duration_ms.push(ms(end).saturating_sub(ms(start)));
        }
        (!al.chars.is_empty()).then_some(al)
    }
}

/// One server message, decoded.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// Audio and/or timings (timestamp-only deltas carry no audio); times are utterance-relative.
    Audio {
        pcm: Bytes,
        timing: Option<Alignment>,
    },
    /// `audio.done`: the utterance closed by a `text.done` is fully voiced.
    Done,
    /// `audio.clear` (ack of `text.clear`) and types this adapter does not use.
    Ignored,
    Error(TtsError),
}

pub(crate) fn parse(text: &str) -> Result<Incoming, TtsError> {
    let msg: ServerMsg = serde_json::from_str(text).map_err(socket::bad_json)?;
    Ok(match msg.kind.as_str() {
        "audio.delta" => {
            let pcm = match msg.delta.filter(|d| !d.is_empty()) {
                Some(b64) => socket::b64_audio(&b64)?,
                None => Bytes::new(),
            };
            Incoming::Audio { pcm, timing: msg.audio_timestamps.and_then(Timestamps::into_alignment) }
        }
        "audio.done" => Incoming::Done,
        "error" => {
            let detail = msg
                .message
                .or_else(|| msg.error.as_ref().and_then(|e| e.as_str().map(str::to_string)))
                .unwrap_or_else(|| "unspecified error".into());
            Incoming::Error(classify(&detail))
        }
        _ => Incoming::Ignored,
    })
}

/// xAI reports a bad key as "Incorrect API key provided" (HTTP 400 on REST).
pub(crate) fn classify(detail: &str) -> TtsError {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("api key") {
        TtsError::Unauthorized
    } else if lower.contains("rate limit") || lower.contains("too many") {
        TtsError::RateLimited
    } else {
        TtsError::Provider { message: detail.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn audio_with_timestamps_decodes_to_ms() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8, 0, 2, 0]);
        let text = format!(
            r#"{{"type":"audio.delta","delta":"{b64}","audio_timestamps":{{"graph_chars":["H","i"],"graph_times":[[0.0,0.08],[0.08,0.15]]}}}}"#
        );
        let Incoming::Audio { pcm, timing } = parse(&text).unwrap() else { panic!() };
        assert_eq!(&pcm[..], &[1, 0, 2, 0]);
        assert_eq!(
            timing.unwrap(),
            Alignment { chars: vec!['H', 'i'], start_ms: vec![0, 80], duration_ms: vec![80, 70] }
        );
    }

    #[test]
    fn timestamp_only_done_and_errors() {
        let got =
            parse(r#"{"type":"audio.delta","audio_timestamps":{"graph_chars":["a","b"],"graph_times":[[1.0,1.1]]}}"#)
                .unwrap();
        let Incoming::Audio { pcm, timing } = got else { panic!() };
        assert!(pcm.is_empty());
        assert_eq!(timing.unwrap().chars, ['a'], "arrays trimmed to the shared length");
        assert_eq!(parse(r#"{"type":"audio.done"}"#).unwrap(), Incoming::Done);
        assert_eq!(parse(r#"{"type":"audio.clear"}"#).unwrap(), Incoming::Ignored);
        assert_eq!(
            parse(r#"{"type":"error","message":"Incorrect API key provided: xa***xx."}"#).unwrap(),
            Incoming::Error(TtsError::Unauthorized)
        );
        assert_eq!(
            parse(r#"{"type":"error","message":"boom"}"#).unwrap(),
            Incoming::Error(TtsError::Provider { message: "boom".into() })
        );
        assert!(matches!(parse("nope"), Err(TtsError::Protocol(_))));
        assert!(matches!(parse(r#"{"type":"audio.delta","delta":"!!"}"#), Err(TtsError::Protocol(_))));
    }
}
