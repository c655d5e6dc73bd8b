//! Gladia live v2 messages (protocols/stt.md B7): every server message is an envelope
//! `{session_id, created_at, type, data}`.

use crate::wspump::{Flow, Wire};
use crate::{SttError, SttEvent};
use bytes::Bytes;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const STOP_RECORDING: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"stop_recording"}"#);

/// The common envelope; `data` is decoded per `type`.
#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    data: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct TranscriptData {
    is_final: bool,
    utterance: Utterance,
}

#[derive(Debug, Deserialize)]
struct SpeechData {
    time: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PostFinalData {
    metadata: Option<Metadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorData {
    message: Option<String>,
    code: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct Utterance {
    start: f64,
    end: f64,
    text: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    audio_duration: Option<f64>,
    /// `audio_duration × channels`: what Gladia bills.
    billing_time: Option<f64>,
}

#[derive(Default)]
pub(crate) struct GladiaWire {
    billed_ms: Option<u64>,
}

fn data<'a, T: Deserialize<'a>>(env: &'a Envelope<'_>) -> Result<T, SttError> {
    T::deserialize(&env.data).map_err(|e| SttError::Protocol(format!("bad Gladia {} message: {e}", env.kind)))
}

fn secs_to_ms(s: f64) -> Option<u64> {
    (s.is_finite() && s >= 0.0).then(|| (s * 1000.0).round() as u64)
}

impl Wire for GladiaWire {
    const NAME: &'static str = "gladia";

    fn audio(&mut self, pcm: Bytes) -> Message {
        Message::Binary(pcm)
    }

    /// Gladia has no keep-alive message.
    fn keepalive(&mut self) -> Option<Message> {
        None
    }

    /// Gladia has no flush command: its own endpointing ends utterances.
    fn finalize(&mut self) -> Option<Message> {
        None
    }

    fn close(&mut self) -> Option<Message> {
        Some(Message::Text(STOP_RECORDING))
    }

    fn decode(&mut self, text: &str, out: &mut Vec<SttEvent>) -> Result<Flow, SttError> {
        let env: Envelope =
            serde_json::from_str(text).map_err(|e| SttError::Protocol(format!("undecodable Gladia message: {e}")))?;
        match env.kind.as_ref() {
            "transcript" => {
                let TranscriptData { is_final, utterance: u } = data(&env)?;
                let text = u.text.trim().to_string();
                if is_final {
                    out.push(SttEvent::Final { text, start_s: u.start, end_s: u.end, speech_final: true });
                } else if !text.is_empty() {
                    out.push(SttEvent::Interim { text, start_s: u.start, end_s: u.end });
                }
            }
            "speech_start" => out.push(SttEvent::SpeechStarted { at_s: data::<SpeechData>(&env)?.time }),
            "speech_end" => out.push(SttEvent::UtteranceEnd { last_word_end_s: data::<SpeechData>(&env)?.time }),
            "post_final_transcript" => {
                let post: PostFinalData = data(&env).unwrap_or_default();
                self.billed_ms = post.metadata.and_then(|m| m.billing_time.or(m.audio_duration)).and_then(secs_to_ms);
            }
            "end_session" => return Ok(Flow::Finished),
            "error" => {
                let e: ErrorData = data(&env).unwrap_or_default();
                return Err(match e.code {
                    Some(401 | 403) => SttError::Unauthorized,
                    Some(429) => SttError::RateLimited,
                    _ => SttError::Protocol(format!("Gladia error: {}", e.message.as_deref().unwrap_or("no detail"))),
                });
            }
            other => tracing::trace!(kind = other, "gladia: ignoring message"),
        }
        Ok(Flow::Continue)
    }

    fn provider_audio_ms(&self) -> Option<u64> {
        self.billed_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wspump::decode_one as decode;

    #[test]
    fn transcripts_speech_events_and_billing() {
        let mut w = GladiaWire::default();
        let fin = r#"{"session_id":"s","created_at":"2024-01-01T00:00:00.000Z","type":"transcript","data":{"id":"00_00000000","is_final":true,
            "utterance":{"start":0.5,"end":1.7,"confidence":0.9,"channel":0,"text":" Hello.","language":"en","words":[]}}}"#;
        assert_eq!(
            decode(&mut w, fin).1,
            [SttEvent::Final { text: "Hello.".into(), start_s: 0.5, end_s: 1.7, speech_final: true }]
        );
        let start = r#"{"session_id":"s","created_at":"x","type":"speech_start","data":{"time":0.5,"channel":0}}"#;
        assert_eq!(decode(&mut w, start).1, [SttEvent::SpeechStarted { at_s: 0.5 }]);
        let post = r#"{"session_id":"s","created_at":"x","type":"post_final_transcript","data":{"metadata":{"audio_duration":3.2,"number_of_distinct_channels":1,"billing_time":3.2,"transcription_time":0.4}}}"#;
        assert_eq!(decode(&mut w, post).0, Ok(Flow::Continue));
        assert_eq!(w.provider_audio_ms(), Some(3200));
        let end = r#"{"session_id":"s","created_at":"x","type":"end_session","data":{}}"#;
        assert_eq!(decode(&mut w, end).0, Ok(Flow::Finished));
        let ack = r#"{"session_id":"s","created_at":"x","type":"start_recording","data":{}}"#;
        assert_eq!(decode(&mut w, ack), (Ok(Flow::Continue), vec![]));
    }
}
