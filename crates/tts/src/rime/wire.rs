//! Rime `ws3` JSON messages (protocols/tts.md C4) and the adapter's [`Dialect`]: text tagged
//! with one `contextId`, `flush` after the stream's first phrase and at the end of each turn
//! (each answered by `done`), base64 PCM chunks that may split a sample, word timestamps, `eos`
//! once everything is done, `clear` on barge-in.
//!
//! The socket asks Rime to segment (`segment=bySentence`): Rime voices each sentence once it
//! is complete, whatever pieces it came in. A reply's first phrase (`Sure, `) is flushed so the
//! caller hears it without waiting for the end of its sentence; the rest is left to Rime.

use crate::socket;
use crate::socket::pump::{Closing, Dialect, Incoming};
use crate::socket::words::WordTimes;
use crate::TtsError;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

pub(crate) const CLEAR: &str = r#"{"operation":"clear"}"#;
pub(crate) const EOS: &str = r#"{"operation":"eos"}"#;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMsg {
    Chunk {
        #[serde(default)]
        data: Option<String>,
        #[serde(default, rename = "contextId")]
        context_id: Option<String>,
    },
    Timestamps {
        #[serde(default)]
        word_timestamps: Option<WordTimes>,
        #[serde(default, rename = "contextId")]
        context_id: Option<String>,
    },
    Done {
        #[serde(default, rename = "contextId")]
        context_id: Option<String>,
    },
    Error {
        #[serde(default)]
        message: Option<String>,
    },
}

/// The adapter side of one `ws3` socket.
pub(crate) struct RimeDialect {
    context_id: String,
    /// Text has been sent: the first phrase is behind us.
    spoke: bool,
    unflushed: bool,
    /// Flushes not yet answered by `done`.
    outstanding: u32,
    closing: bool,
}

impl RimeDialect {
    pub(crate) fn new(context_id: String) -> Self {
        Self { context_id, spoke: false, unflushed: false, outstanding: 0, closing: false }
    }

    /// Messages for another context (or none named) belong to this socket's only stream.
    fn ours(&self, context_id: Option<&str>) -> bool {
        context_id.is_none_or(|c| c == self.context_id)
    }
}

impl Dialect for RimeDialect {
    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError> {
        self.unflushed = true;
        out.push(Message::text(serde_json::json!({"text": text, "contextId": self.context_id}).to_string()));
        if !std::mem::replace(&mut self.spoke, true) {
            self.flush(out);
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Message>) {
        if std::mem::take(&mut self.unflushed) {
            self.outstanding += 1;
            let msg = serde_json::json!({"operation": "flush", "contextId": self.context_id});
            out.push(Message::text(msg.to_string()));
        }
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Closing {
        self.closing = true;
        self.flush(out);
        Closing::unless_busy(self.outstanding > 0, Closing::Done)
    }

    fn goodbye(&mut self, out: &mut Vec<Message>) {
        out.push(Message::text(EOS));
    }

    fn cancel(&mut self, out: &mut Vec<Message>) {
        out.push(Message::text(CLEAR));
    }

    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>) {
        let Message::Text(text) = msg else { return };
        let msg = match serde_json::from_str::<ServerMsg>(&text) {
            Ok(m) => m,
            Err(e) => {
                out.extend(socket::unknown_message("rime", &text, e).map(Incoming::Fatal));
                return;
            }
        };
        match msg {
            ServerMsg::Chunk { data, context_id } if self.ours(context_id.as_deref()) => {
                let Some(b64) = data.filter(|d| !d.is_empty()) else { return };
                out.push(socket::b64_audio(&b64).map_or_else(Incoming::Fatal, Incoming::Audio));
            }
            ServerMsg::Timestamps { word_timestamps: Some(w), context_id } if self.ours(context_id.as_deref()) => {
                out.push(Incoming::Words(w));
            }
            ServerMsg::Done { context_id } if self.ours(context_id.as_deref()) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                if self.closing && self.outstanding == 0 {
                    out.push(Incoming::Finished);
                }
            }
            ServerMsg::Error { message } => {
                let message = message.unwrap_or_else(|| "unknown error".into());
                out.push(Incoming::Fatal(TtsError::Provider { message }));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn spells_text_flush_eos_and_reads_the_replies() {
        let mut d = RimeDialect::new("c1".into());
        let mut out = Vec::new();
        d.text("Hi, ", &mut out).unwrap();
        d.text("you. ", &mut out).unwrap();
        assert_eq!(d.close(&mut out), Closing::Pending);
        d.goodbye(&mut out);
        let sent: Vec<serde_json::Value> =
            out.iter().map(|m| serde_json::from_str(m.to_text().unwrap()).unwrap()).collect();
        let flush = serde_json::json!({"operation": "flush", "contextId": "c1"});
        assert_eq!(
            sent,
            [
                serde_json::json!({"text": "Hi, ", "contextId": "c1"}),
                flush.clone(),
                serde_json::json!({"text": "you. ", "contextId": "c1"}),
                flush,
                serde_json::json!({"operation": "eos"}),
            ],
            "the first phrase is flushed alone, the rest at the end"
        );

        let mut got = Vec::new();
        d.parse(Message::text(r#"{"type":"done","contextId":"c1"}"#), &mut got);
        assert!(got.is_empty(), "the first phrase's done is not the end");
        d.parse(Message::text(r#"{"type":"chunk","data":"AQID","contextId":"c1"}"#), &mut got);
        d.parse(Message::text(r#"{"type":"chunk","data":"AQID","contextId":"old"}"#), &mut got);
        d.parse(Message::text(r#"{"type":"timestamps","word_timestamps":{"words":["Hi."],"start":[0],"end":[0.15]},"contextId":"c1"}"#), &mut got);
        d.parse(Message::text(r#"{"type":"done","contextId":"c1"}"#), &mut got);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Incoming::Audio(Bytes::from_static(&[1, 2, 3])));
        assert!(matches!(&got[1], Incoming::Words(w) if w.end == [0.15]));
        assert_eq!(got[2], Incoming::Finished);

        let mut got = Vec::new();
        d.parse(Message::text(r#"{"type":"error","message":"bad speaker"}"#), &mut got);
        assert_eq!(got, [Incoming::Fatal(TtsError::Provider { message: "bad speaker".into() })]);
    }
}
