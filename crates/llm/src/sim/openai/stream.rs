//! The paced SSE body of a streaming completion, event for event like OpenAI's: a role chunk,
//! one chunk per token, a finish chunk, the usage chunk if asked for, `[DONE]`. Each event is
//! its own body frame, so hyper flushes it on its own and time-to-first-token is measurable.

use crate::sim::paced::{self, Frame, Pacer};
use axum::body::Bytes;
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(super) struct Plan {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub tokens: Vec<String>,
    pub finish_reason: &'static str,
    pub usage: Option<Value>,
    /// Put `usage` under `x_groq` on the finish chunk instead of a usage chunk.
    pub x_groq: bool,
    pub drop_after: Option<usize>,
    /// Azure's stream: a prompt-filter chunk with empty `choices` first, and
    /// `content_filter_results` on every choice (protocols/aws-azure.md Z3).
    pub azure: bool,
    pub first_token_delay: Duration,
    pub tokens_per_sec: f64,
    pub stop: CancellationToken,
    /// Streams in flight; lets tests see that a cancelled client really hung up.
    pub open: Arc<AtomicUsize>,
}

impl Plan {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        event(&self.chunk_value(delta, finish_reason))
    }

    fn chunk_value(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_sim",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
            "usage": null
        });
        if self.azure {
            // Text chunks carry the verdicts; the role and finish chunks an empty object.
            let has_text = chunk["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty());
            chunk["choices"][0]["content_filter_results"] = if has_text { safe_verdicts() } else { json!({}) };
        }
        chunk
    }

    /// Every frame with its offset from the start of the response.
    fn schedule(&self) -> Vec<(Duration, Frame)> {
        let mut pacer = Pacer::new(self.first_token_delay, self.tokens_per_sec);
        let mut frames = Vec::with_capacity(self.tokens.len() + 5);
        if self.azure {
            let verdicts = json!([{"prompt_index": 0, "content_filter_results": prompt_verdicts()}]);
            let annotation = json!({
                "id": "", "object": "", "created": 0, "model": "",
                "prompt_filter_results": verdicts, "choices": [], "usage": null
            });
            frames.push((Duration::ZERO, Frame::Data(event(&annotation))));
        }
        frames.push((
            Duration::ZERO,
            Frame::Data(self.chunk(json!({"role": "assistant", "content": "", "refusal": null}), None)),
        ));
        for (i, token) in self.tokens.iter().enumerate() {
            let at = pacer.next_token();
            if self.drop_after == Some(i) {
                frames.push((at, Frame::Cut));
                return frames;
            }
            frames.push((at, Frame::Data(self.chunk(json!({"content": token}), None))));
        }
        let at = pacer.last();
        if self.drop_after.is_some() {
            frames.push((at, Frame::Cut));
            return frames;
        }
        let mut finish = self.chunk_value(json!({}), Some(self.finish_reason));
        match (&self.usage, self.x_groq) {
            (Some(usage), true) => {
                finish["x_groq"] = json!({"id": format!("req_{}", self.id), "usage": usage});
                frames.push((at, Frame::Data(event(&finish))));
            }
            (usage, _) => {
                frames.push((at, Frame::Data(event(&finish))));
                if let Some(usage) = usage {
                    let chunk = json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "system_fingerprint": "fp_sim",
                        "choices": [],
                        "usage": usage
                    });
                    frames.push((at, Frame::Data(event(&chunk))));
                }
            }
        }
        frames.push((at, Frame::Data(Bytes::from_static(b"data: [DONE]\n\n"))));
        frames
    }
}

/// Azure's per-category content-filter verdicts for harmless text.
fn safe_verdicts() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

/// The prompt's verdicts: the text categories plus the jailbreak check.
fn prompt_verdicts() -> Value {
    let mut v = safe_verdicts();
    v["jailbreak"] = json!({"filtered": false, "detected": false});
    v
}

fn event(v: &Value) -> Bytes {
    paced::sse(None, v)
}

pub(super) fn response(plan: Plan) -> Response {
    let frames = plan.schedule();
    paced::response(frames, plan.stop, plan.open)
}
