//! Deepgram Aura `/v1/speak` messages (protocols/tts.md C5) and the adapter's [`Dialect`]:
//! `Speak` per text piece, each followed by `Flush` while the socket's flush allowance lasts
//! (each answered by `Flushed`), binary audio, `Close` once everything is flushed, `Clear` on
//! barge-in.
//!
//! Aura voices nothing until it is flushed ("renders a buffer of text into audio"), and takes
//! at most 20 `Flush` a minute on a socket. The session sends a reply as phrases (its first
//! phrase, then sentences), so each phrase is flushed as it comes — otherwise the caller would
//! hear nothing until the LLM had written the whole reply — while [`KEPT_FOR_TURN_ENDS`] of the
//! minute's flushes are held back for the end of the turn and a tool call's pause. Past the
//! allowance, phrases wait in Aura's buffer for the next flush.

use crate::socket;
use crate::socket::pump::{Closing, Dialect, Incoming};
use crate::TtsError;
use serde::Deserialize;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

pub(crate) const FLUSH: &str = r#"{"type":"Flush"}"#;
pub(crate) const CLEAR: &str = r#"{"type":"Clear"}"#;
pub(crate) const CLOSE: &str = r#"{"type":"Close"}"#;

/// Aura's limit: `Flush` messages a socket may send in any [`FLUSH_WINDOW`].
const FLUSHES_PER_WINDOW: usize = 20;
const FLUSH_WINDOW: Duration = Duration::from_secs(60);
/// Flushes mid-turn phrases never take: one for a tool call's pause, one for the turn's end.
const KEPT_FOR_TURN_ENDS: usize = 2;

/// When this socket's flushes of the last [`FLUSH_WINDOW`] went out.
#[derive(Debug, Default)]
struct FlushBudget {
    sent: VecDeque<Instant>,
}

impl FlushBudget {
    fn used(&mut self, now: Instant) -> usize {
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= FLUSH_WINDOW) {
            self.sent.pop_front();
        }
        self.sent.len()
    }

    /// A mid-turn phrase may be flushed without touching the flushes kept for turn ends.
    fn spare(&mut self, now: Instant) -> bool {
        self.used(now) + KEPT_FOR_TURN_ENDS < FLUSHES_PER_WINDOW
    }

    fn spend(&mut self, now: Instant) {
        self.sent.push_back(now);
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum ServerMsg {
    Metadata {
        #[serde(default)]
        model_name: Option<String>,
    },
    Flushed {},
    Cleared {},
    Warning {
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        code: Option<String>,
    },
    /// Not in the v1 spec, but the v2 socket and other Deepgram sockets use it.
    Error {
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        code: Option<String>,
    },
}

/// The adapter side of one `/v1/speak` socket.
#[derive(Debug, Default)]
pub(crate) struct DeepgramDialect {
    /// `Speak` sent since the last `Flush`.
    unflushed: bool,
    /// `Flush`es not yet answered by `Flushed`.
    outstanding: u32,
    closing: bool,
    budget: FlushBudget,
}

impl DeepgramDialect {
    fn send_flush(&mut self, now: Instant, out: &mut Vec<Message>) {
        self.unflushed = false;
        self.outstanding += 1;
        self.budget.spend(now);
        out.push(Message::text(FLUSH));
    }

    /// After the last answer to a flush at the end of input: finished, unless text was left
    /// unvoiced by a refused flush.
    fn settle(&mut self, out: &mut Vec<Incoming>) {
        if !self.closing || self.outstanding > 0 {
            return;
        }
        out.push(if self.unflushed {
            Incoming::Fatal(TtsError::Provider { message: "Deepgram refused the last flush (flush limit)".into() })
        } else {
            Incoming::Finished
        });
    }

    /// A `Flush` over the limit is refused with a warning and never answered: its text stays in
    /// Aura's buffer for the next flush. At the end of input there is no next flush, so rather
    /// than wait out the stall timer the stream fails now (and the session's failover voices
    /// the rest elsewhere).
    fn flush_refused(&mut self, out: &mut Vec<Incoming>) {
        self.outstanding -= 1;
        self.unflushed = true;
        self.settle(out);
    }
}

/// A `Speak` message; both sockets spell it the same.
pub(crate) fn speak(text: &str) -> Message {
    Message::text(serde_json::json!({"type": "Speak", "text": text}).to_string())
}

/// Both sockets send audio as binary frames and everything else as JSON text: audio goes to
/// `out`, a text frame comes back to be parsed.
pub(crate) fn audio_or_text(msg: Message, out: &mut Vec<Incoming>) -> Option<Utf8Bytes> {
    match msg {
        Message::Binary(pcm) => {
            out.push(Incoming::Audio(pcm));
            None
        }
        Message::Text(t) => Some(t),
        _ => None,
    }
}

/// An `Error` message as the stream's end; both sockets spell it the same.
pub(crate) fn provider_error(code: Option<String>, description: Option<String>) -> TtsError {
    let message = match (code, description) {
        (Some(c), Some(d)) => format!("{c}: {d}"),
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => "unknown error".into(),
    };
    TtsError::Provider { message }
}

impl Dialect for DeepgramDialect {
    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError> {
        self.unflushed = true;
        out.push(speak(text));
        let now = Instant::now();
        if self.budget.spare(now) {
            self.send_flush(now, out);
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Message>) {
        // Never spend one of the minute's flushes on nothing.
        if self.unflushed {
            self.send_flush(Instant::now(), out);
        }
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Closing {
        self.closing = true;
        self.flush(out);
        Closing::unless_busy(self.outstanding > 0, Closing::Done)
    }

    fn goodbye(&mut self, out: &mut Vec<Message>) {
        out.push(Message::text(CLOSE));
    }

    fn cancel(&mut self, out: &mut Vec<Message>) {
        out.push(Message::text(CLEAR));
        out.push(Message::text(CLOSE));
    }

    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>) {
        let Some(text) = audio_or_text(msg, out) else { return };
        match serde_json::from_str::<ServerMsg>(&text) {
            Ok(ServerMsg::Flushed {}) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.settle(out);
            }
            Ok(ServerMsg::Metadata { model_name }) => tracing::debug!(model = ?model_name, "deepgram: stream opened"),
            Ok(ServerMsg::Cleared {}) => {}
            Ok(ServerMsg::Warning { description, code }) => {
                tracing::warn!(code = ?code, description = ?description, "deepgram tts warning");
                if code.as_deref().is_some_and(|c| c.contains("FLUSH")) && self.outstanding > 0 {
                    self.flush_refused(out);
                }
            }
            Ok(ServerMsg::Error { description, code }) => out.push(Incoming::Fatal(provider_error(code, description))),
            Err(e) => out.extend(socket::unknown_message("deepgram", &text, e).map(Incoming::Fatal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn flushes_only_spoken_text_and_finishes_on_the_last_flushed() {
        let mut d = DeepgramDialect::default();
        let mut out = Vec::new();
        d.flush(&mut out);
        assert!(out.is_empty());
        d.text("Hi there.", &mut out).unwrap();
        d.flush(&mut out);
        d.text(" Bye.", &mut out).unwrap();
        assert_eq!(d.close(&mut out), Closing::Pending);
        let sent: Vec<serde_json::Value> =
            out.iter().map(|m| serde_json::from_str(m.to_text().unwrap()).unwrap()).collect();
        let flush = serde_json::json!({"type": "Flush"});
        assert_eq!(
            sent,
            [
                serde_json::json!({"type": "Speak", "text": "Hi there."}),
                flush.clone(),
                serde_json::json!({"type": "Speak", "text": " Bye."}),
                flush
            ]
        );

        let mut got = Vec::new();
        d.parse(Message::binary(Bytes::from_static(&[1, 0])), &mut got);
        d.parse(Message::text(r#"{"type":"Metadata","request_id":"r","model_name":"aura-2-thalia-en"}"#), &mut got);
        d.parse(Message::text(r#"{"type":"Flushed","sequence_id":0}"#), &mut got);
        assert_eq!(got, [Incoming::Audio(Bytes::from_static(&[1, 0]))]);
        d.parse(Message::text(r#"{"type":"Warning","description":"slow down","code":"W"}"#), &mut got);
        d.parse(Message::text(r#"{"type":"Flushed","sequence_id":1}"#), &mut got);
        assert_eq!(got.last(), Some(&Incoming::Finished));

        let mut idle = DeepgramDialect::default();
        assert_eq!(idle.close(&mut Vec::new()), Closing::Done, "nothing spoken, nothing to wait for");
    }

    fn flushes(out: &[Message]) -> usize {
        out.iter().filter(|m| m.to_text().is_ok_and(|t| t == FLUSH)).count()
    }

    #[tokio::test(start_paused = true)]
    async fn each_phrase_is_flushed_while_two_of_the_minutes_flushes_are_kept_for_turn_ends() {
        let mut d = DeepgramDialect::default();
        let mut out = Vec::new();
        for i in 0..25 {
            d.text(&format!("Sentence {i}. "), &mut out).unwrap();
        }
        assert_eq!(flushes(&out), FLUSHES_PER_WINDOW - KEPT_FOR_TURN_ENDS);
        out.clear();
        d.flush(&mut out);
        d.text("After the tool. ", &mut out).unwrap();
        assert_eq!(flushes(&out), 1, "the tool pause takes a kept flush, the phrase after it waits");
        assert_eq!(d.close(&mut out), Closing::Pending);
        assert_eq!(flushes(&out), 2, "the turn's end takes the other");

        tokio::time::advance(FLUSH_WINDOW).await;
        let mut later = Vec::new();
        d.text("A minute later. ", &mut later).unwrap();
        assert_eq!(flushes(&later), 1, "the window moved on");
    }

    #[test]
    fn a_refused_flush_keeps_its_text_for_the_next_and_a_refused_last_one_fails_the_stream() {
        let refusal = r#"{"type":"Warning","code":"FLUSH_LIMIT_EXCEEDED","description":"Flush ignored"}"#;
        let mut d = DeepgramDialect::default();
        let mut out = Vec::new();
        d.text("One. ", &mut out).unwrap();
        let mut got = Vec::new();
        d.parse(Message::text(refusal), &mut got);
        assert!(got.is_empty(), "mid-turn: the text waits in Aura's buffer");
        assert_eq!(d.close(&mut out), Closing::Pending, "the end of input flushes it again");
        d.parse(Message::text(refusal), &mut got);
        let refused =
            Incoming::Fatal(TtsError::Provider { message: "Deepgram refused the last flush (flush limit)".into() });
        assert_eq!(got, [refused]);

        // Refused while an earlier flush is still out: that one's answer cannot finish the stream.
        let mut d = DeepgramDialect::default();
        d.text("One. ", &mut out).unwrap();
        d.text("Two. ", &mut out).unwrap();
        assert_eq!(d.close(&mut out), Closing::Pending);
        let mut got = Vec::new();
        d.parse(Message::text(refusal), &mut got);
        d.parse(Message::text(r#"{"type":"Flushed","sequence_id":0}"#), &mut got);
        assert!(matches!(got.as_slice(), [Incoming::Fatal(_)]), "{got:?}");
    }
}
