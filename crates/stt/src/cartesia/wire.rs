//! Cartesia `/stt/websocket` messages (protocols/stt.md B5): binary PCM up, plain-text
//! `finalize` / `close` commands, JSON `transcript` / `flush_done` / `done` / `error` down.

use crate::wspump::{pcm_ms, seconds_to_ms, Flow, Wire};
use crate::{SttError, SttEvent};
use bytes::Bytes;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const FINALIZE: Utf8Bytes = Utf8Bytes::from_static("finalize");
const CLOSE: Utf8Bytes = Utf8Bytes::from_static("close");

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMsg {
    Transcript {
        #[serde(default)]
        text: String,
        #[serde(default)]
        is_final: bool,
        /// Seconds of audio behind this chunk (since the previous final).
        #[serde(default)]
        duration: Option<f64>,
    },
    FlushDone,
    Done,
    Error {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        title: Option<String>,
        #[serde(default, alias = "code")]
        status_code: Option<u16>,
    },
    #[serde(other)]
    Other,
}

pub(crate) struct CartesiaWire {
    sample_rate: u32,
    sent_bytes: u64,
    /// `finalize`s whose `flush_done` has not come back: finals until then answer a flush and
    /// are not endpoints.
    pending_flushes: u32,
    /// End of the last final's audio, in stream seconds.
    final_end_s: f64,
    /// Sum of the `duration`s of final chunks, when the provider gives them.
    reported_ms: Option<u64>,
    /// `close` was sent: what follows flushes the buffer and is no endpoint either.
    closing: bool,
    done: bool,
}

impl CartesiaWire {
    pub(crate) fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            sent_bytes: 0,
            pending_flushes: 0,
            final_end_s: 0.0,
            reported_ms: None,
            closing: false,
            done: false,
        }
    }

    fn sent_s(&self) -> f64 {
        pcm_ms(self.sent_bytes, self.sample_rate) as f64 / 1000.0
    }
}

impl Wire for CartesiaWire {
    const NAME: &'static str = "cartesia";

    fn audio(&mut self, pcm: Bytes) -> Message {
        self.sent_bytes += pcm.len() as u64;
        Message::Binary(pcm)
    }

    /// Cartesia has no keep-alive message; WebSocket pings from the library suffice.
    fn keepalive(&mut self) -> Option<Message> {
        None
    }

    fn finalize(&mut self) -> Option<Message> {
        self.pending_flushes += 1;
        Some(Message::Text(FINALIZE))
    }

    fn close(&mut self) -> Option<Message> {
        self.closing = true;
        Some(Message::Text(CLOSE))
    }

    fn decode(&mut self, text: &str, out: &mut Vec<SttEvent>) -> Result<Flow, SttError> {
        let msg: ServerMsg =
            serde_json::from_str(text).map_err(|e| SttError::Protocol(format!("undecodable Cartesia message: {e}")))?;
        match msg {
            ServerMsg::Transcript { text, is_final, duration } => {
                let start_s = self.final_end_s;
                let end_s = match duration {
                    Some(d) if d.is_finite() && d >= 0.0 => start_s + d,
                    _ => self.sent_s().max(start_s),
                };
                // Text is a delta with its own leading space; events carry bare text.
                let text = text.trim();
                if is_final {
                    self.final_end_s = end_s;
                    if let Some(d) = duration {
                        // Saturating: a hostile `duration` (1e308) would overflow the sum.
                        let ms = self.reported_ms.get_or_insert(0);
                        *ms = ms.saturating_add(seconds_to_ms(d));
                    }
                    let speech_final = self.pending_flushes == 0 && !self.closing;
                    if !text.is_empty() || speech_final {
                        out.push(SttEvent::Final { text: text.to_string(), start_s, end_s, speech_final });
                    }
                } else if !text.is_empty() {
                    out.push(SttEvent::Interim { text: text.to_string(), start_s, end_s });
                }
            }
            ServerMsg::FlushDone => self.pending_flushes = self.pending_flushes.saturating_sub(1),
            ServerMsg::Done => {
                self.done = true;
                return Ok(Flow::Finished);
            }
            ServerMsg::Error { message, title, status_code } => {
                return Err(match status_code {
                    Some(401 | 403) => SttError::Unauthorized,
                    Some(429) => SttError::RateLimited,
                    _ => SttError::Protocol(format!(
                        "Cartesia error {}: {}",
                        title.as_deref().unwrap_or("?"),
                        message.as_deref().unwrap_or("no detail")
                    )),
                });
            }
            ServerMsg::Other => tracing::debug!("cartesia: ignoring message"),
        }
        Ok(Flow::Continue)
    }

    /// The summed final durations, once `done` proved every buffered second was transcribed;
    /// otherwise the local count is used.
    fn provider_audio_ms(&self) -> Option<u64> {
        self.reported_ms.filter(|_| self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wspump::decode_one as decode;

    #[test]
    fn finals_chain_durations_and_flushes_are_not_endpoints() {
        let mut w = CartesiaWire::new(16000);
        let (_, ev) =
            decode(&mut w, r#"{"type":"transcript","request_id":"r","text":" Hello","is_final":false,"duration":0.8}"#);
        assert_eq!(ev, [SttEvent::Interim { text: "Hello".into(), start_s: 0.0, end_s: 0.8 }]);
        let (_, ev) = decode(
            &mut w,
            r#"{"type":"transcript","request_id":"r","text":" Hello there.","is_final":true,"duration":1.5,"language":"en","words":[]}"#,
        );
        assert_eq!(ev, [SttEvent::Final { text: "Hello there.".into(), start_s: 0.0, end_s: 1.5, speech_final: true }]);
        w.finalize();
        let (_, ev) =
            decode(&mut w, r#"{"type":"transcript","request_id":"r","text":" Bye.","is_final":true,"duration":0.5}"#);
        assert_eq!(ev, [SttEvent::Final { text: "Bye.".into(), start_s: 1.5, end_s: 2.0, speech_final: false }]);
        assert_eq!(decode(&mut w, r#"{"type":"flush_done","request_id":"r"}"#).0, Ok(Flow::Continue));
        assert_eq!(w.pending_flushes, 0);
        assert_eq!(w.provider_audio_ms(), None);
        assert_eq!(decode(&mut w, r#"{"type":"done","request_id":"r"}"#).0, Ok(Flow::Finished));
        assert_eq!(w.provider_audio_ms(), Some(2000));
    }

    #[test]
    fn huge_durations_saturate_the_billed_total() {
        // Found by the `stt_wire` fuzz harness's hostile inputs: two finals of 1e308 s overflowed the u64 sum.
        let mut w = CartesiaWire::new(16000);
        let fin = r#"{"type":"transcript","text":"x","is_final":true,"duration":1e308}"#;
        assert_eq!(decode(&mut w, fin).0, Ok(Flow::Continue));
        assert_eq!(decode(&mut w, fin).0, Ok(Flow::Continue));
        assert_eq!(decode(&mut w, r#"{"type":"done"}"#).0, Ok(Flow::Finished));
        assert_eq!(w.provider_audio_ms(), Some(u64::MAX));
    }

    #[test]
    fn errors_are_typed() {
        let mut w = CartesiaWire::new(16000);
        let bad = r#"{"type":"error","title":"Invalid model","message":"The model is not valid","error_code":"model_not_found","status_code":400,"request_id":"x"}"#;
        assert_eq!(
            decode(&mut w, bad).0,
            Err(SttError::Protocol("Cartesia error Invalid model: The model is not valid".into()))
        );
        assert_eq!(decode(&mut w, r#"{"type":"error","message":"no","code":401}"#).0, Err(SttError::Unauthorized));
        assert!(matches!(decode(&mut w, "[]").0, Err(SttError::Protocol(_))));
    }
}
