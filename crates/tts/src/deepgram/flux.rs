//! Deepgram Flux TTS over `/v2/speak` (protocols/tts.md C5, early access) and the adapter's
//! [`Dialect`]: turn-based. Text goes in as it comes — Flux places its own generation
//! boundaries at clauses and sentences, so unlike Aura no phrase needs a `Flush` and there is
//! no flush allowance to ration — and `Flush` ends a turn (the agent's reply, or its text
//! before a tool call's pause), answered by `SpeechMetadata` then `Flushed`. Early access has
//! no `Clear` or `Interrupt`: on barge-in the pump hangs up.

use super::wire::{audio_or_text, provider_error, speak, CLOSE, FLUSH};
use crate::socket;
use crate::socket::pump::{Closing, Dialect, Incoming};
use crate::TtsError;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

/// Flux's stock English voice (its docs' first example).
pub const DEFAULT_VOICE: &str = "alexis-en";
/// linear16 rates `/v2/speak` offers.
pub const SAMPLE_RATES: [u32; 6] = [8000, 16000, 24000, 32000, 44100, 48000];

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum ServerMsg {
    Connected {
        #[serde(default)]
        model_name: Option<String>,
    },
    SpeechStarted {},
    /// A turn's totals; billing counts the characters as sent, which these never exceed.
    SpeechMetadata {
        #[serde(default)]
        billable_character_count: Option<u64>,
    },
    Flushed {},
    SessionMetadata {},
    Warning {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    Error {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
}

/// The adapter side of one `/v2/speak` socket.
#[derive(Debug, Default)]
pub(crate) struct FluxDialect {
    /// `Speak` sent since the last `Flush`: a turn is open on the server.
    in_turn: bool,
    /// `Flush`es not yet answered by `Flushed`.
    outstanding: u32,
    closing: bool,
}

impl FluxDialect {
    fn answered(&mut self, out: &mut Vec<Incoming>) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if self.closing && self.outstanding == 0 {
            out.push(Incoming::Finished);
        }
    }
}

impl Dialect for FluxDialect {
    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError> {
        self.in_turn = true;
        out.push(speak(text));
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Message>) {
        // A `Flush` with no turn open only earns a `NO_ACTIVE_SPEECH` warning.
        if std::mem::take(&mut self.in_turn) {
            self.outstanding += 1;
            out.push(Message::text(FLUSH));
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

    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>) {
        let Some(text) = audio_or_text(msg, out) else { return };
        match serde_json::from_str::<ServerMsg>(&text) {
            Ok(ServerMsg::Flushed {}) => self.answered(out),
            Ok(ServerMsg::Connected { model_name }) => {
                tracing::debug!(model = ?model_name, "deepgram flux: stream opened")
            }
            Ok(ServerMsg::SpeechMetadata { billable_character_count }) => {
                tracing::debug!(billable = ?billable_character_count, "deepgram flux: turn voiced");
            }
            Ok(ServerMsg::SpeechStarted {} | ServerMsg::SessionMetadata {}) => {}
            Ok(ServerMsg::Warning { code, description }) => {
                tracing::warn!(code = ?code, description = ?description, "deepgram flux warning");
                // The server saw no turn to end: that `Flush` gets no `Flushed`.
                if code.as_deref() == Some("NO_ACTIVE_SPEECH") && self.outstanding > 0 {
                    self.answered(out);
                }
            }
            Ok(ServerMsg::Error { code, description }) => out.push(Incoming::Fatal(provider_error(code, description))),
            Err(e) => out.extend(socket::unknown_message("deepgram", &text, e).map(Incoming::Fatal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sent(out: &[Message]) -> Vec<serde_json::Value> {
        out.iter().map(|m| serde_json::from_str(m.to_text().unwrap()).unwrap()).collect()
    }

    #[test]
    fn text_goes_as_it_comes_and_flush_ends_the_turn_once() {
        let mut d = FluxDialect::default();
        let mut out = Vec::new();
        d.flush(&mut out);
        assert!(out.is_empty(), "no turn, no flush");
        d.text("Sure, ", &mut out).unwrap();
        d.text("I can help.", &mut out).unwrap();
        d.flush(&mut out);
        d.flush(&mut out);
        let flush = serde_json::json!({"type": "Flush"});
        assert_eq!(
            sent(&out),
            [
                serde_json::json!({"type": "Speak", "text": "Sure, "}),
                serde_json::json!({"type": "Speak", "text": "I can help."}),
                flush.clone(),
            ]
        );
        out.clear();
        d.text("Next turn.", &mut out).unwrap();
        assert_eq!(d.close(&mut out), Closing::Pending);
        assert_eq!(sent(&out)[1], flush);

        let mut got = Vec::new();
        d.parse(Message::binary(Bytes::from_static(&[1, 0])), &mut got);
        d.parse(Message::text(r#"{"type":"SpeechStarted","speech_id":"dg_sp_0123456789ab"}"#), &mut got);
        d.parse(
            Message::text(
                r#"{"type":"SpeechMetadata","speech_id":"dg_sp_0123456789ab","audio_duration_ms":900,"input_character_count":17,"billable_character_count":17,"controls_applied":{"pronunciations_applied":0,"pronunciation_warnings":0}}"#,
            ),
            &mut got,
        );
        d.parse(Message::text(r#"{"type":"Flushed","speech_id":"dg_sp_0123456789ab"}"#), &mut got);
        assert_eq!(got, [Incoming::Audio(Bytes::from_static(&[1, 0]))], "one Flushed of two");
        d.parse(Message::text(r#"{"type":"Flushed","speech_id":"dg_sp_0123456789ac"}"#), &mut got);
        assert_eq!(got.last(), Some(&Incoming::Finished));

        assert_eq!(FluxDialect::default().close(&mut Vec::new()), Closing::Done, "nothing spoken");
    }

    #[test]
    fn errors_end_the_stream_and_a_flush_without_a_turn_is_answered_by_its_warning() {
        let mut d = FluxDialect::default();
        let mut out = Vec::new();
        d.text("Hi.", &mut out).unwrap();
        assert_eq!(d.close(&mut out), Closing::Pending);
        let mut got = Vec::new();
        d.parse(Message::text(r#"{"type":"Warning","code":"SYNTHESIS_RETRYING","description":"retrying"}"#), &mut got);
        assert!(got.is_empty());
        d.parse(Message::text(r#"{"type":"Warning","code":"NO_ACTIVE_SPEECH","description":"no turn"}"#), &mut got);
        assert_eq!(got, [Incoming::Finished]);

        let mut got = Vec::new();
        d.parse(Message::text(r#"{"type":"Error","code":"DATA-0000","description":"bad text"}"#), &mut got);
        d.parse(Message::text(r#"{"type":"Interrupted","later":"message"}"#), &mut got);
        d.parse(Message::text("not json"), &mut got);
        assert_eq!(
            got,
            [
                Incoming::Fatal(TtsError::Provider { message: "DATA-0000: bad text".into() }),
                Incoming::Fatal(TtsError::Protocol("bad JSON from provider: expected ident at line 1 column 2".into())),
            ]
        );
    }
}
