//! The paced SSE body of a streaming completion, event for event like OpenAI's: a role chunk,
//! one chunk per token, a finish chunk, the usage chunk if asked for, `[DONE]`. Each event is
//! its own chunk, written as it comes due, so time-to-first-token is measurable.
//!
//! Tool calls instead of text (protocols/llm.md D1, "Tool-call deltas"): per call, a first delta
//! with its `index`, `id`, `type`, `function.name` and empty `arguments` (the first call's
//! carrying the role, `content: null`), then its argument fragments under the same `index`; the
//! finish reads `tool_calls`.

use super::function_calling::argument_pieces;
use crate::paced::{self, Frame, Pacer};
use llm::ToolCall;
use serde_json::{json, Value};
use std::time::Duration;

pub(super) struct Plan {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub tokens: Vec<String>,
    /// Made instead of replying (then `tokens` is empty).
    pub calls: Vec<ToolCall>,
    pub finish_reason: &'static str,
    pub usage: Option<Value>,
    /// Put `usage` under `x_groq` on the finish chunk instead of a usage chunk.
    pub x_groq: bool,
    pub drop_after: Option<usize>,
    /// Azure's stream: a prompt-filter chunk with empty `choices` first, and
    /// `content_filter_results` on every choice (protocols/aws-azure.md Z3).
    pub azure: bool,
}

/// One paced write of the answer.
enum Piece<'a> {
    Token(&'a str),
    /// The first delta of the call at this index.
    CallStart(usize, &'a ToolCall),
    /// A fragment of call `index`'s arguments.
    Arguments(usize, String),
}

impl Plan {
    /// What is written at the pacer's times: the tokens, or each call's start and fragments.
    fn pieces(&self) -> Vec<Piece<'_>> {
        if self.calls.is_empty() {
            return self.tokens.iter().map(|t| Piece::Token(t)).collect();
        }
        let per_call = self.calls.iter().enumerate().flat_map(|(i, c)| {
            let fragments = argument_pieces(&c.arguments).into_iter().map(move |p| Piece::Arguments(i, p));
            std::iter::once(Piece::CallStart(i, c)).chain(fragments)
        });
        per_call.collect()
    }

    fn piece_frame(&self, piece: &Piece<'_>) -> Frame {
        let delta = match piece {
            Piece::Token(t) => json!({"content": t}),
            Piece::CallStart(i, call) => {
                let start = json!({"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}});
                if *i == 0 {
                    json!({"role": "assistant", "content": null, "tool_calls": [start], "refusal": null})
                } else {
                    json!({"tool_calls": [start]})
                }
            }
            Piece::Arguments(i, fragment) => json!({"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}),
        };
        Frame::Data(self.chunk(delta, None))
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Vec<u8> {
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
    pub(super) fn schedule(&self, mut pacer: Pacer) -> Vec<(Duration, Frame)> {
        let mut frames = Vec::with_capacity(self.tokens.len() + 5);
        if self.azure {
            let verdicts = json!([{"prompt_index": 0, "content_filter_results": prompt_verdicts()}]);
            let annotation = json!({
                "id": "", "object": "", "created": 0, "model": "",
                "prompt_filter_results": verdicts, "choices": [], "usage": null
            });
            frames.push((Duration::ZERO, Frame::Data(event(&annotation))));
        }
        if self.calls.is_empty() {
            let role = json!({"role": "assistant", "content": "", "refusal": null});
            frames.push((Duration::ZERO, Frame::Data(self.chunk(role, None))));
        }
        let pieces = self.pieces();
        let frame = |_, piece: &Piece<'_>| self.piece_frame(piece);
        let Some(at) = paced::items(&mut frames, &mut pacer, &pieces, self.drop_after, frame) else {
            return frames;
        };
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
        frames.push((at, Frame::Data(b"data: [DONE]\n\n".to_vec())));
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

fn event(v: &Value) -> Vec<u8> {
    paced::sse(None, v)
}
