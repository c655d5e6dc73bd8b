//! The single-context `stream-input` socket as a [`Dialect`]: text with a trailing space,
//! `flush` per turn, EOS at the end; audio with its alignment back, `isFinal` once everything
//! is voiced, then the provider closes with 1000.

use super::wire;
use crate::socket::pump::{abnormal_close, Closing, Dialect, Incoming};
use crate::TtsError;
use tokio_tungstenite::tungstenite::{protocol::CloseFrame, Message};

const FLUSH: &str = r#"{"text":" ","flush":true}"#;
const EOS: &str = r#"{"text":""}"#;

pub(super) struct StreamInput;

impl Dialect for StreamInput {
    const STALL: &'static str = "no isFinal after end of stream";

    /// Billable characters are the caller's text, not the space appended so words don't join.
    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError> {
        let spaced;
        let text = if text.ends_with(char::is_whitespace) {
            text
        } else {
            spaced = format!("{text} ");
            &spaced
        };
        out.push(Message::text(serde_json::json!({"text": text, "try_trigger_generation": true}).to_string()));
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Message>) {
        out.push(Message::text(FLUSH));
    }

    /// `""` ends the stream; the provider answers with `isFinal`, then closes.
    fn close(&mut self, out: &mut Vec<Message>) -> Closing {
        out.push(Message::text(EOS));
        Closing::Pending
    }

    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>) {
        let Message::Text(text) = msg else { return };
        let inc = match wire::parse(&text) {
            Ok(inc) => inc,
            Err(e) => return out.push(Incoming::Fatal(e)),
        };
        if let Some(e) = inc.error {
            return out.push(Incoming::Fatal(e));
        }
        if let Some((pcm, alignment)) = inc.audio {
            out.extend(alignment.map(Incoming::Timings));
            out.push(Incoming::Audio(pcm));
        }
        if inc.is_final {
            // The provider closes the socket itself once it has said this.
            out.push(Incoming::Done);
        }
    }

    fn closed(&self, frame: Option<&CloseFrame>) -> Option<TtsError> {
        abnormal_close(frame)
    }
}
