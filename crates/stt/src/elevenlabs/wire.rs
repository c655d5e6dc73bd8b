//! ElevenLabs Scribe realtime messages (protocols/stt.md B4): audio as base64 inside JSON
//! `input_audio_chunk`, results discriminated by `message_type`.

use crate::wspump::{pcm_ms, Flow, Wire};
use crate::{SttError, SttEvent};
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use std::fmt::Write;
use tokio_tungstenite::tungstenite::Message;

/// Server → client, by `message_type`. Error bodies name their text `error` (the SDK) or
/// `message` (what LiveKit reads); both are accepted.
#[derive(Debug, Deserialize)]
pub(super) struct ServerMsg {
    pub message_type: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

pub(crate) struct ElevenLabsWire {
    sample_rate: u32,
    /// Bytes of audio sent so far: the time axis for partials and commits (Scribe sends none).
    sent_bytes: u64,
    /// Commits we asked for and whose `committed_transcript` has not arrived yet; commits
    /// beyond these came from the server's VAD, i.e. the end of an utterance.
    pending_commits: u32,
    closing: bool,
    /// End of the last committed window, in stream seconds.
    committed_end_s: f64,
}

impl ElevenLabsWire {
    pub(crate) fn new(sample_rate: u32) -> Self {
        Self { sample_rate, sent_bytes: 0, pending_commits: 0, closing: false, committed_end_s: 0.0 }
    }

    fn now_s(&self) -> f64 {
        pcm_ms(self.sent_bytes, self.sample_rate) as f64 / 1000.0
    }

    fn chunk(&self, pcm: &[u8], commit: bool) -> Message {
        let b64_len = pcm.len().div_ceil(3) * 4;
        let mut s = String::with_capacity(96 + b64_len);
        s.push_str(r#"{"message_type":"input_audio_chunk","audio_base_64":""#);
        base64::engine::general_purpose::STANDARD.encode_string(pcm, &mut s);
        let _ = write!(s, r#"","commit":{commit},"sample_rate":{}}}"#, self.sample_rate);
        Message::text(s)
    }
}

/// An error `message_type` → typed error; `None` for kinds that do not end the session.
pub(super) fn error_of(msg: &ServerMsg) -> Option<SttError> {
    let detail = msg.error.as_deref().or(msg.message.as_deref()).unwrap_or("no detail");
    match msg.message_type.as_str() {
        "auth_error" | "unaccepted_terms_error" => Some(SttError::Unauthorized),
        "rate_limited" | "quota_exceeded" | "resource_exhausted" => Some(SttError::RateLimited),
        "commit_throttled" => None,
        kind if kind == "error" || kind.ends_with("_error") || kind.ends_with("_exceeded") => {
            Some(SttError::Protocol(format!("ElevenLabs {kind}: {detail}")))
        }
        "queue_overflow" | "insufficient_audio_activity" => {
            Some(SttError::Protocol(format!("ElevenLabs {}: {detail}", msg.message_type)))
        }
        _ => None,
    }
}

pub(super) fn parse(text: &str) -> Result<ServerMsg, SttError> {
    serde_json::from_str(text).map_err(|e| SttError::Protocol(format!("undecodable ElevenLabs message: {e}")))
}

impl Wire for ElevenLabsWire {
    const NAME: &'static str = "elevenlabs";

    fn audio(&mut self, pcm: Bytes) -> Message {
        self.sent_bytes += pcm.len() as u64;
        self.chunk(&pcm, false)
    }

    /// An empty, uncommitted chunk: what LiveKit sends to keep an idle session open.
    fn keepalive(&mut self) -> Option<Message> {
        Some(self.chunk(&[], false))
    }

    fn finalize(&mut self) -> Option<Message> {
        self.pending_commits += 1;
        Some(self.chunk(&[], true))
    }

    /// Scribe has no end-of-stream message: commit what is buffered, wait for that commit's
    /// transcript, then close the socket.
    fn close(&mut self) -> Option<Message> {
        self.closing = true;
        self.pending_commits += 1;
        Some(self.chunk(&[], true))
    }

    fn decode(&mut self, text: &str, out: &mut Vec<SttEvent>) -> Result<Flow, SttError> {
        let msg = parse(text)?;
        match msg.message_type.as_str() {
            "partial_transcript" => {
                let text = msg.text.trim();
                if !text.is_empty() {
                    out.push(SttEvent::Interim {
                        text: text.to_string(),
                        start_s: self.committed_end_s,
                        end_s: self.now_s(),
                    });
                }
            }
            "committed_transcript" => {
                let requested = self.pending_commits > 0;
                self.pending_commits = self.pending_commits.saturating_sub(1);
                let (start_s, end_s) = (self.committed_end_s, self.now_s().max(self.committed_end_s));
                self.committed_end_s = end_s;
                let text = msg.text.trim();
                if !text.is_empty() || !requested {
                    out.push(SttEvent::Final { text: text.to_string(), start_s, end_s, speech_final: !requested });
                }
                if self.closing && self.pending_commits == 0 {
                    return Ok(Flow::Finished);
                }
            }
            "session_started" | "committed_transcript_with_timestamps" => {}
            other => {
                if let Some(e) = error_of(&msg) {
                    return Err(e);
                }
                tracing::debug!(kind = other, "elevenlabs: ignoring message");
            }
        }
        Ok(Flow::Continue)
    }

    fn provider_audio_ms(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wspump::decode_one as decode;

    #[test]
    fn audio_is_base64_json() {
        let mut w = ElevenLabsWire::new(16000);
        let Message::Text(t) = w.audio(Bytes::from_static(&[1, 2, 3, 4])) else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message_type":"input_audio_chunk","audio_base_64":"AQIDBA==","commit":false,"sample_rate":16000})
        );
        let Some(Message::Text(t)) = w.finalize() else { panic!() };
        assert!(t.contains(r#""audio_base_64":"","commit":true"#));
    }

    #[test]
    fn commits_map_to_finals_and_close_ends_on_the_last_one() {
        let mut w = ElevenLabsWire::new(16000);
        w.audio(Bytes::from(vec![0u8; 32000]));
        let (_, ev) = decode(&mut w, r#"{"message_type":"partial_transcript","text":"hello"}"#);
        assert_eq!(ev, [SttEvent::Interim { text: "hello".into(), start_s: 0.0, end_s: 1.0 }]);
        let (_, ev) = decode(&mut w, r#"{"message_type":"committed_transcript","text":"Hello there."}"#);
        assert_eq!(ev, [SttEvent::Final { text: "Hello there.".into(), start_s: 0.0, end_s: 1.0, speech_final: true }]);
        w.close();
        let (flow, ev) = decode(&mut w, r#"{"message_type":"committed_transcript","text":""}"#);
        assert_eq!((flow.unwrap(), ev.len()), (Flow::Finished, 0));
    }

    #[test]
    fn errors_are_typed() {
        let mut w = ElevenLabsWire::new(16000);
        let (r, _) = decode(&mut w, r#"{"message_type":"auth_error","error":"Invalid API key"}"#);
        assert_eq!(r, Err(SttError::Unauthorized));
        let (r, _) = decode(&mut w, r#"{"message_type":"quota_exceeded","error":"x"}"#);
        assert_eq!(r, Err(SttError::RateLimited));
        let (r, _) = decode(&mut w, r#"{"message_type":"transcriber_error","message":"boom"}"#);
        assert_eq!(r, Err(SttError::Protocol("ElevenLabs transcriber_error: boom".into())));
        let (r, _) = decode(&mut w, r#"{"message_type":"commit_throttled","error":"slow down"}"#);
        assert_eq!(r, Ok(Flow::Continue));
        assert!(matches!(decode(&mut w, "nope").0, Err(SttError::Protocol(_))));
    }
}
