//! One Responses answer, whole or as OpenAI's named-event stream (protocols/llm-more.md E1), with
//! incrementing `sequence_number`s and no `[DONE]`: a message item with its text deltas, or one
//! `function_call` item per call (`output_index` 0, 1, …), each added, its argument deltas, then
//! `function_call_arguments.done` and `output_item.done`.

use crate::openai::function_calling::argument_pieces;
use crate::paced::{self, Frame, Pacer};
use crate::replies::Turn;
use llm::ToolCall;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The request's tool fields, echoed in the Response object as OpenAI echoes them.
pub(crate) struct Echo {
    pub tools: Value,
    pub tool_choice: Value,
    pub parallel_tool_calls: bool,
}

pub(super) struct Plan {
    id: String,
    created: u64,
    model: String,
    tokens: Vec<String>,
    calls: Vec<ToolCall>,
    /// The reply was cut by `max_output_tokens`.
    truncated: bool,
    prompt_tokens: u64,
    output_tokens: u64,
    drop_after: Option<usize>,
    echo: Echo,
}

/// One paced write of a function-call answer.
enum Piece<'a> {
    Added(usize, &'a ToolCall),
    Arguments(usize, String),
    Done(usize, &'a ToolCall),
}

/// Numbers and frames events in order.
#[derive(Default)]
struct Sequence(u64);

impl Sequence {
    fn event(&mut self, mut v: Value) -> Vec<u8> {
        let name = v["type"].as_str().unwrap_or_default().to_string();
        v["sequence_number"] = json!(self.0);
        self.0 += 1;
        paced::sse(Some(&name), &v)
    }
}

impl Plan {
    pub(super) fn new(model: &str, turn: Turn, echo: Echo, drop_after: Option<usize>) -> Self {
        let output_tokens = turn.output_tokens();
        Self {
            id: format!("resp_sim{}", uuid::Uuid::new_v4().simple()),
            created: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            model: model.to_string(),
            tokens: turn.tokens,
            calls: turn.calls,
            truncated: turn.truncated,
            prompt_tokens: turn.prompt_tokens,
            output_tokens,
            drop_after,
            echo,
        }
    }

    fn item_id(&self, prefix: &str, index: usize) -> String {
        format!("{prefix}_{}{index}", self.id.trim_start_matches("resp_"))
    }

    fn call_item(&self, index: usize, call: &ToolCall, status: &str) -> Value {
        json!({
            "id": self.item_id("fc", index), "type": "function_call", "status": status,
            "call_id": call.id, "name": call.name,
            "arguments": if status == "in_progress" { "" } else { call.arguments.as_str() }
        })
    }

    fn message_item(&self, status: &str) -> Value {
        let content = if status != "in_progress" {
            json!([{"type": "output_text", "text": self.tokens.concat(), "annotations": []}])
        } else {
            json!([])
        };
        json!({"id": self.item_id("msg", 0), "type": "message", "status": status, "role": "assistant", "content": content})
    }

    /// Every output item at `status`: the calls, or the message.
    fn output(&self, status: &str) -> Value {
        if self.calls.is_empty() {
            return json!([self.message_item(status)]);
        }
        Value::Array(self.calls.iter().enumerate().map(|(i, c)| self.call_item(i, c, status)).collect())
    }

    /// The Response object at `status` (`in_progress`, `completed`, `incomplete`).
    pub(super) fn object(&self, status: &str) -> Value {
        let done = status != "in_progress";
        let out = self.output_tokens;
        json!({
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "background": false, "error": null,
            "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
            "instructions": null, "max_output_tokens": null, "model": self.model,
            "output": if done { self.output(status) } else { json!([]) },
            "parallel_tool_calls": self.echo.parallel_tool_calls, "previous_response_id": null, "store": false,
            "temperature": 1.0, "tool_choice": self.echo.tool_choice, "tools": self.echo.tools, "top_p": 1.0,
            "truncation": "disabled",
            "usage": if done { json!({
                "input_tokens": self.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": out, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.prompt_tokens + out
            }) } else { Value::Null },
            "metadata": {}
        })
    }

    /// The final status: `incomplete` when `max_output_tokens` cut the reply.
    pub(super) fn final_status(&self) -> &'static str {
        if self.truncated && self.calls.is_empty() {
            "incomplete"
        } else {
            "completed"
        }
    }

    pub(super) fn schedule(&self, mut pacer: Pacer) -> Vec<(Duration, Frame)> {
        let mut seq = Sequence::default();
        let mut frames = Vec::with_capacity(self.tokens.len() + 10);
        let zero = Duration::ZERO;
        for kind in ["response.created", "response.in_progress"] {
            let ev = seq.event(json!({"type": kind, "response": self.object("in_progress")}));
            frames.push((zero, Frame::Data(ev)));
        }
        let at = if self.calls.is_empty() {
            self.text(&mut seq, &mut frames, &mut pacer)
        } else {
            self.function_calls(&mut seq, &mut frames, &mut pacer)
        };
        let Some(at) = at else {
            return frames;
        };
        let status = self.final_status();
        let ev = seq.event(json!({"type": format!("response.{status}"), "response": self.object(status)}));
        frames.push((at, Frame::Data(ev)));
        frames
    }

    /// The message item's events; `None` when a scripted drop cut the stream.
    fn text(&self, seq: &mut Sequence, frames: &mut Vec<(Duration, Frame)>, pacer: &mut Pacer) -> Option<Duration> {
        let zero = Duration::ZERO;
        let id = self.item_id("msg", 0);
        let added =
            json!({"type": "response.output_item.added", "output_index": 0, "item": self.message_item("in_progress")});
        frames.push((zero, Frame::Data(seq.event(added))));
        let part = json!({"type": "output_text", "text": "", "annotations": []});
        let part_added = json!({"type": "response.content_part.added", "item_id": id, "output_index": 0, "content_index": 0, "part": part});
        frames.push((zero, Frame::Data(seq.event(part_added))));
        let delta = |_, token: &String| {
            let delta = json!({"type": "response.output_text.delta", "item_id": id, "output_index": 0, "content_index": 0, "delta": token, "logprobs": []});
            Frame::Data(seq.event(delta))
        };
        let at = paced::items(frames, pacer, &self.tokens, self.drop_after, delta)?;
        let text = self.tokens.concat();
        let item_status = if self.final_status() == "incomplete" { "incomplete" } else { "completed" };
        for ev in [
            json!({"type": "response.output_text.done", "item_id": id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            json!({"type": "response.content_part.done", "item_id": id, "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}}),
            json!({"type": "response.output_item.done", "output_index": 0, "item": self.message_item(item_status)}),
        ] {
            frames.push((at, Frame::Data(seq.event(ev))));
        }
        Some(at)
    }

    /// Each call's events in turn; `None` when a scripted drop cut the stream.
    fn function_calls(
        &self,
        seq: &mut Sequence,
        frames: &mut Vec<(Duration, Frame)>,
        pacer: &mut Pacer,
    ) -> Option<Duration> {
        let pieces: Vec<Piece<'_>> = self
            .calls
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                let fragments = argument_pieces(&c.arguments).into_iter().map(move |p| Piece::Arguments(i, p));
                std::iter::once(Piece::Added(i, c)).chain(fragments).chain(std::iter::once(Piece::Done(i, c)))
            })
            .collect();
        let frame = |_, piece: &Piece<'_>| {
            let bytes = match piece {
                Piece::Added(i, c) => seq.event(json!({"type": "response.output_item.added", "output_index": i, "item": self.call_item(*i, c, "in_progress")})),
                Piece::Arguments(i, fragment) => seq.event(json!({"type": "response.function_call_arguments.delta", "item_id": self.item_id("fc", *i), "output_index": i, "delta": fragment})),
                // Both closing events of a call in one write.
                Piece::Done(i, c) => {
                    let args_done = json!({"type": "response.function_call_arguments.done", "item_id": self.item_id("fc", *i), "output_index": i, "name": c.name, "arguments": c.arguments});
                    let item_done = json!({"type": "response.output_item.done", "output_index": i, "item": self.call_item(*i, c, "completed")});
                    [seq.event(args_done), seq.event(item_done)].concat()
                }
            };
            Frame::Data(bytes)
        };
        paced::items(frames, pacer, &pieces, self.drop_after, frame)
    }
}
