//! The paced event stream of one Messages answer, event for event like Anthropic's:
//! `message_start` (input usage), `content_block_start`, `ping`, one `text_delta` per token,
//! `content_block_stop`, `message_delta` (stop reason, output usage), `message_stop`.

use crate::sim::paced::{sse, Frame, Pacer};
use serde_json::{json, Value};
use std::time::Duration;

pub(super) struct Plan {
    pub id: String,
    pub model: String,
    pub tokens: Vec<String>,
    pub stop_reason: &'static str,
    pub input_tokens: u64,
    pub drop_after: Option<usize>,
    pub first_token_delay: Duration,
    pub tokens_per_sec: f64,
}

fn named(v: &Value) -> Frame {
    Frame::Data(sse(v["type"].as_str(), v))
}

impl Plan {
    /// Every frame with its offset from the start of the response.
    pub(super) fn schedule(&self) -> Vec<(Duration, Frame)> {
        let mut pacer = Pacer::new(self.first_token_delay, self.tokens_per_sec);
        let mut frames = Vec::with_capacity(self.tokens.len() + 7);
        let start = json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }});
        frames.push((Duration::ZERO, named(&start)));
        frames.push((
            Duration::ZERO,
            named(&json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        ));
        frames.push((Duration::ZERO, named(&json!({"type": "ping"}))));
        for (i, token) in self.tokens.iter().enumerate() {
            let at = pacer.next_token();
            if self.drop_after == Some(i) {
                frames.push((at, Frame::Cut));
                return frames;
            }
            let delta =
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}});
            frames.push((at, named(&delta)));
        }
        let at = pacer.last();
        if self.drop_after.is_some() {
            frames.push((at, Frame::Cut));
            return frames;
        }
        let end = [
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": self.stop_reason, "stop_sequence": null}, "usage": {"output_tokens": self.tokens.len()}}),
            json!({"type": "message_stop"}),
        ];
        frames.extend(end.iter().map(|v| (at, named(v))));
        frames
    }
}
