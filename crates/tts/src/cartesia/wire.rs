//! Cartesia `/tts/websocket` messages (protocols/tts.md C3) and the adapter's [`Dialect`]:
//! one context per stream, text as `continue:true` generation requests voiced as they come
//! (`max_buffer_delay_ms: 0`), `flush:true` at the end of a turn, `continue:false` at the end
//! of input, `cancel:true` on barge-in.

use crate::socket;
use crate::socket::pump::{Closing, Dialect, Incoming};
use crate::socket::words::WordTimes;
use crate::TtsError;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VoiceSpec<'a> {
    pub mode: &'static str,
    pub id: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct OutputFormat {
    pub container: &'static str,
    pub encoding: &'static str,
    pub sample_rate: u32,
}

/// One GenerationRequest; every message of a context repeats model, voice and format.
#[derive(Debug, Serialize)]
pub(crate) struct GenerationRequest<'a> {
    pub context_id: &'a str,
    pub model_id: &'a str,
    pub transcript: &'a str,
    pub voice: VoiceSpec<'a>,
    pub output_format: OutputFormat,
    #[serde(rename = "continue")]
    pub continue_: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flush: bool,
    pub add_timestamps: bool,
    /// Always 0: the session's phrases are the buffering. Left unset, Cartesia may hold text
    /// for up to 3 s waiting for more context, and the caller hears the first phrase only once
    /// its sentence ends.
    pub max_buffer_delay_ms: u32,
}

/// Server messages, by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMsg {
    Chunk {
        #[serde(default)]
        context_id: Option<String>,
        #[serde(default)]
        data: Option<String>,
    },
    Timestamps {
        #[serde(default)]
        context_id: Option<String>,
        #[serde(default)]
        word_timestamps: Option<WordTimes>,
    },
    FlushDone {},
    PhonemeTimestamps {},
    Done {
        #[serde(default)]
        context_id: Option<String>,
    },
    Error {
        #[serde(default)]
        context_id: Option<String>,
        #[serde(default)]
        status_code: Option<u16>,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        error_code: Option<String>,
    },
}

/// The adapter side of one context.
pub(crate) struct CartesiaDialect {
    pub context_id: String,
    pub model: String,
    pub voice: String,
    pub sample_rate: u32,
    /// Text has been sent, so the context exists on the server.
    started: bool,
    /// Text was sent since the last flush.
    unflushed: bool,
    closing: bool,
}

impl CartesiaDialect {
    pub(crate) fn new(context_id: String, model: &str, voice: &str, sample_rate: u32) -> Self {
        Self {
            context_id,
            model: model.to_string(),
            voice: voice.to_string(),
            sample_rate,
            started: false,
            unflushed: false,
            closing: false,
        }
    }

    fn request(&self, transcript: &str, continue_: bool, flush: bool) -> Message {
        let req = GenerationRequest {
            context_id: &self.context_id,
            model_id: &self.model,
            transcript,
            voice: VoiceSpec { mode: "id", id: &self.voice },
            output_format: OutputFormat { container: "raw", encoding: "pcm_s16le", sample_rate: self.sample_rate },
            continue_,
            flush,
            add_timestamps: true,
            max_buffer_delay_ms: 0,
        };
        // Plain strings and numbers only: serialization cannot fail.
        Message::text(serde_json::to_string(&req).unwrap_or_default())
    }

    fn ours(&self, context_id: Option<&str>) -> bool {
        context_id.is_none_or(|c| c == self.context_id)
    }
}

impl Dialect for CartesiaDialect {
    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError> {
        self.started = true;
        self.unflushed = true;
        out.push(self.request(text, true, false));
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Message>) {
        if std::mem::take(&mut self.unflushed) {
            out.push(self.request("", true, true));
        }
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Closing {
        self.closing = true;
        if !self.started {
            return Closing::Done; // no context was ever opened
        }
        out.push(self.request("", false, false));
        Closing::Pending
    }

    fn goodbye(&mut self, _out: &mut Vec<Message>) {}

    fn cancel(&mut self, out: &mut Vec<Message>) {
        if self.started {
            let msg = serde_json::json!({"context_id": self.context_id, "cancel": true});
            out.push(Message::text(msg.to_string()));
        }
    }

    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>) {
        let Message::Text(text) = msg else { return };
        let msg: ServerMsg = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                out.extend(socket::unknown_message("cartesia", &text, e).map(Incoming::Fatal));
                return;
            }
        };
        match msg {
            ServerMsg::Chunk { context_id, data } if self.ours(context_id.as_deref()) => {
                let Some(b64) = data.filter(|d| !d.is_empty()) else { return };
                out.push(socket::b64_audio(&b64).map_or_else(Incoming::Fatal, Incoming::Audio));
            }
            ServerMsg::Timestamps { context_id, word_timestamps: Some(w) } if self.ours(context_id.as_deref()) => {
                out.push(Incoming::Words(w));
            }
            ServerMsg::Done { context_id } if self.ours(context_id.as_deref()) => {
                out.push(if self.closing {
                    Incoming::Finished
                } else {
                    Incoming::Fatal(TtsError::Provider { message: "the context ended before the input did".into() })
                });
            }
            ServerMsg::Error { context_id, status_code, title, message, error_code }
                if self.ours(context_id.as_deref()) =>
            {
                out.push(Incoming::Fatal(provider_error(status_code, title, message, error_code)));
            }
            _ => {}
        }
    }
}

fn provider_error(
    status: Option<u16>,
    title: Option<String>,
    message: Option<String>,
    code: Option<String>,
) -> TtsError {
    match status {
        Some(401 | 403) => return TtsError::Unauthorized,
        Some(429) => return TtsError::RateLimited,
        _ => {}
    }
    let text = match (title, message) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => code.unwrap_or_else(|| "unknown error".into()),
    };
    TtsError::Provider { message: text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn parse(d: &mut CartesiaDialect, json: &str) -> Vec<Incoming> {
        let mut out = Vec::new();
        d.parse(Message::text(json), &mut out);
        out
    }

    #[test]
    fn requests_follow_the_generation_request_shape() {
        let mut d = CartesiaDialect::new("ctx".into(), "sonic-3", "voice-1", 16000);
        let mut out = Vec::new();
        d.text("Hello ", &mut out).unwrap();
        d.flush(&mut out);
        d.flush(&mut out);
        assert_eq!(d.close(&mut out), Closing::Pending);
        d.cancel(&mut out);
        let json: Vec<serde_json::Value> =
            out.iter().map(|m| serde_json::from_str(m.to_text().unwrap()).unwrap()).collect();
        assert_eq!(json.len(), 4, "the second flush had nothing to flush");
        assert_eq!(
            json[0],
            serde_json::json!({"context_id":"ctx","model_id":"sonic-3","transcript":"Hello ",
                "voice":{"mode":"id","id":"voice-1"},
                "output_format":{"container":"raw","encoding":"pcm_s16le","sample_rate":16000},
                "continue":true,"add_timestamps":true,"max_buffer_delay_ms":0})
        );
        assert_eq!((json[1]["transcript"].as_str(), json[1]["flush"].as_bool()), (Some(""), Some(true)));
        assert_eq!(json[2]["continue"], false);
        assert_eq!(json[3], serde_json::json!({"context_id":"ctx","cancel":true}));

        let mut fresh = CartesiaDialect::new("c".into(), "m", "v", 8000);
        let mut out = Vec::new();
        assert_eq!(fresh.close(&mut out), Closing::Done, "no context opened, nothing to wait for");
        fresh.cancel(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn reads_chunks_timestamps_done_and_errors() {
        let mut d = CartesiaDialect::new("ctx".into(), "sonic-3", "v", 16000);
        let got = parse(
            &mut d,
            r#"{"type":"chunk","context_id":"ctx","data":"AQACAA==","done":false,"status_code":206,"step_time":1.0}"#,
        );
        assert_eq!(got, [Incoming::Audio(Bytes::from_static(&[1, 0, 2, 0]))]);
        assert!(parse(&mut d, r#"{"type":"chunk","context_id":"other","data":"AQACAA=="}"#).is_empty());
        let got = parse(
            &mut d,
            r#"{"type":"timestamps","context_id":"ctx","done":false,"word_timestamps":{"words":["Hi"],"start":[0.0],"end":[0.2]}}"#,
        );
        assert!(matches!(&got[..], [Incoming::Words(w)] if w.words == ["Hi"]));
        assert!(parse(&mut d, r#"{"type":"flush_done","context_id":"ctx","flush_done":true,"flush_id":1}"#).is_empty());
        assert!(parse(&mut d, r#"{"type":"brand_new","x":1}"#).is_empty());
        assert!(matches!(
            &parse(&mut d, r#"{"type":"done","context_id":"ctx","done":true}"#)[..],
            [Incoming::Fatal(_)]
        ));
        d.closing = true;
        assert_eq!(parse(&mut d, r#"{"type":"done","context_id":"ctx","done":true}"#), [Incoming::Finished]);
        assert_eq!(
            parse(&mut d, r#"{"type":"error","done":true,"status_code":401,"title":"Unauthorized"}"#),
            [Incoming::Fatal(TtsError::Unauthorized)]
        );
        assert_eq!(
            parse(
                &mut d,
                r#"{"type":"error","context_id":"ctx","done":true,"status_code":500,"title":"Internal","message":"boom"}"#
            ),
            [Incoming::Fatal(TtsError::Provider { message: "Internal: boom".into() })]
        );
        assert!(matches!(&parse(&mut d, "{oops")[..], [Incoming::Fatal(TtsError::Protocol(_))]));
    }
}
