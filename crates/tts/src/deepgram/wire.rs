//! Deepgram Aura `/v1/speak` messages (protocols/tts.md C5) and the adapter's [`Dialect`]:
//! `Speak` per text piece, `Flush` per turn (each answered by `Flushed`), binary audio,
//! `Close` once everything is flushed, `Clear` on barge-in.

use crate::socket;
use crate::socket::pump::{Closing, Dialect, Incoming};
use crate::TtsError;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

pub(crate) const FLUSH: &str = r#"{"type":"Flush"}"#;
pub(crate) const CLEAR: &str = r#"{"type":"Clear"}"#;
pub(crate) const CLOSE: &str = r#"{"type":"Close"}"#;

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
}

impl Dialect for DeepgramDialect {
    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError> {
        self.unflushed = true;
        out.push(Message::text(serde_json::json!({"type": "Speak", "text": text}).to_string()));
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Message>) {
        // Deepgram allows 20 flushes a minute: never spend one on nothing.
        if std::mem::take(&mut self.unflushed) {
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

    fn cancel(&mut self, out: &mut Vec<Message>) {
        out.push(Message::text(CLEAR));
        out.push(Message::text(CLOSE));
    }

    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>) {
        let text = match msg {
            Message::Binary(pcm) => {
                out.push(Incoming::Audio(pcm));
                return;
            }
            Message::Text(t) => t,
            _ => return,
        };
        match serde_json::from_str::<ServerMsg>(&text) {
            Ok(ServerMsg::Flushed {}) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                if self.closing && self.outstanding == 0 {
                    out.push(Incoming::Finished);
                }
            }
            Ok(ServerMsg::Metadata { model_name }) => tracing::debug!(model = ?model_name, "deepgram: stream opened"),
            Ok(ServerMsg::Cleared {}) => {}
            Ok(ServerMsg::Warning { description, code }) => {
                tracing::warn!(code = ?code, description = ?description, "deepgram tts warning");
            }
            Ok(ServerMsg::Error { description, code }) => {
                let message = match (code, description) {
                    (Some(c), Some(d)) => format!("{c}: {d}"),
                    (Some(s), None) | (None, Some(s)) => s,
                    (None, None) => "unknown error".into(),
                };
                out.push(Incoming::Fatal(TtsError::Provider { message }));
            }
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
}
