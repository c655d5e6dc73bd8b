//! The paced event stream of one Messages answer, event for event like Anthropic's:
//! `message_start` (input usage), `content_block_start`, `ping`, one `text_delta` per token,
//! `content_block_stop`, `message_delta` (stop reason, output usage), `message_stop`. Tool calls
//! are one block each: `content_block_start` with the `tool_use` (`input: {}`), its arguments as
//! `input_json_delta` fragments, `content_block_stop` (llm.md D2).

use crate::paced::{self, sse, Frame, Pacer};
use crate::replies::Turn;
use crate::tools::argument_pieces;
use llm::ToolCall;
use serde_json::{json, Value};
use std::time::Duration;

pub(super) struct Plan {
    pub id: String,
    pub model: String,
    pub stop_reason: &'static str,
    pub turn: Turn,
    pub drop_after: Option<usize>,
}

fn named(v: &Value) -> Frame {
    Frame::Data(sse(v["type"].as_str(), v))
}

/// A whole `tool_use` content block (the non-streaming answer's).
pub(super) fn tool_use_block(call: &ToolCall) -> Value {
    let input: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
}

/// The events of the calls, block `i` for call `i`: start, argument fragments, stop.
fn call_events(calls: &[ToolCall]) -> Vec<Value> {
    let mut events = Vec::new();
    for (index, call) in calls.iter().enumerate() {
        let block = json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}});
        events.push(json!({"type": "content_block_start", "index": index, "content_block": block}));
        for piece in argument_pieces(&call.arguments) {
            let delta = json!({"type": "input_json_delta", "partial_json": piece});
            events.push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    events
}

impl Plan {
    /// Every frame with its offset from the start of the response.
    pub(super) fn schedule(&self, mut pacer: Pacer) -> Vec<(Duration, Frame)> {
        let mut frames = Vec::with_capacity(self.turn.tokens.len() + 7);
        let start = json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.turn.prompt_tokens, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }});
        frames.push((Duration::ZERO, named(&start)));
        let body = if self.turn.calls.is_empty() {
            self.text(&mut frames, &mut pacer)
        } else {
            frames.push((Duration::ZERO, named(&json!({"type": "ping"}))));
            let events = call_events(&self.turn.calls);
            paced::items(&mut frames, &mut pacer, &events, self.drop_after, |_, v| named(v))
        };
        let Some(at) = body else {
            return frames;
        };
        let end = [
            json!({"type": "message_delta", "delta": {"stop_reason": self.stop_reason, "stop_sequence": null}, "usage": {"output_tokens": self.turn.output_tokens()}}),
            json!({"type": "message_stop"}),
        ];
        frames.extend(end.iter().map(|v| (at, named(v))));
        frames
    }

    /// The text block: start, ping, a delta per token, stop.
    fn text(&self, frames: &mut Vec<(Duration, Frame)>, pacer: &mut Pacer) -> Option<Duration> {
        frames.push((
            Duration::ZERO,
            named(&json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        ));
        frames.push((Duration::ZERO, named(&json!({"type": "ping"}))));
        let delta = |_, token: &String| {
            named(&json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}))
        };
        let at = paced::items(frames, pacer, &self.turn.tokens, self.drop_after, delta)?;
        frames.push((at, named(&json!({"type": "content_block_stop", "index": 0}))));
        Some(at)
    }
}
