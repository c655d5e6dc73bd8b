//! Turns the SSE payloads of one Messages stream into [`LlmEvent`]s.
//!
//! Usage: input from `message_start` (or a later `message_delta` that reports it, as some
//! gateways do), output from the last `message_delta` (cumulative); emitted once at close.
//! A `tool_use` block is emitted as one [`ToolCall`] at its `content_block_stop`, its
//! `input_json_delta` fragments joined.

use super::wire::{Block, Delta, ErrorBody, Event, Usage};
use crate::error::scrub;
use crate::estimate::estimate_output_tokens;
use crate::pump::{Decode, Step};
use crate::{LlmError, LlmEvent, ToolCall};
use std::collections::BTreeMap;

#[derive(Debug)]
pub(crate) struct Decoder {
    /// Open `tool_use` blocks by content-block index.
    tools: BTreeMap<u32, ToolCall>,
    stop_reason: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_estimate: u64,
    /// Characters of text and tool input received, for the output estimate.
    output_chars: usize,
}

impl Decoder {
    /// `input_estimate` is billed if the provider never reports input usage.
    pub(crate) fn new(input_estimate: u64) -> Self {
        Self {
            tools: BTreeMap::new(),
            stop_reason: None,
            input_tokens: None,
            output_tokens: None,
            input_estimate,
            output_chars: 0,
        }
    }
}

/// An `error` event (or body) as the matching HTTP status would map.
pub(super) fn stream_error(error: &ErrorBody) -> LlmError {
    let status = match error.kind.as_deref() {
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("billing_error") => 402,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("request_too_large") => 413,
        Some("rate_limit_error") => 429,
        Some("api_error") => 500,
        Some("overloaded_error") => 529,
        _ => {
            let msg = error.message.as_deref().map(scrub).unwrap_or_else(|| "the provider sent an error event".into());
            return LlmError::Stream(msg);
        }
    };
    LlmError::from_status(status, None, error.message.as_deref())
}

impl Decode for Decoder {
    fn finish_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    fn data(&mut self, data: &str, out: &mut Vec<LlmEvent>) -> Result<Step, LlmError> {
        let event: Event = serde_json::from_str(data).map_err(|e| LlmError::Stream(format!("malformed event: {e}")))?;
        match event {
            Event::MessageStart { message } => {
                if let Some(u) = message.usage {
                    self.usage(u);
                }
            }
            Event::ContentBlockStart { index, content_block } => match content_block {
                Block::Text { text } => self.text(text, out),
                Block::ToolUse { id, name, input } => {
                    // The start's `input` is `{}` and the deltas carry the real JSON; it only
                    // counts if no delta arrives.
                    let arguments = match input {
                        Some(v) if v.as_object().is_some_and(|o| !o.is_empty()) => v.to_string(),
                        _ => String::new(),
                    };
                    self.tools.insert(index, ToolCall::new(id, name, arguments));
                }
                Block::Other => {}
            },
            Event::ContentBlockDelta { index, delta } => match delta {
                Delta::Text { text } => self.text(text, out),
                Delta::InputJson { partial_json } => {
                    if let Some(call) = self.tools.get_mut(&index) {
                        self.output_chars += partial_json.chars().count();
                        call.arguments.push_str(&partial_json);
                    }
                }
                Delta::Other => {}
            },
            Event::ContentBlockStop { index } => {
                if let Some(call) = self.tools.remove(&index) {
                    out.push(LlmEvent::ToolCall(finished(call)));
                }
            }
            Event::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop_reason = Some(reason);
                }
                if let Some(u) = usage {
                    self.usage(u);
                }
            }
            Event::MessageStop => return Ok(Step::Done),
            Event::Error { error } => return Err(stream_error(&error)),
            Event::Other => {}
        }
        Ok(Step::Continue)
    }

    fn close(&mut self, completed: bool, out: &mut Vec<LlmEvent>) {
        let calls = std::mem::take(&mut self.tools);
        if completed {
            out.extend(calls.into_values().map(|c| LlmEvent::ToolCall(finished(c))));
        }
        let estimated_output = estimate_output_tokens(self.output_chars);
        out.push(match (self.input_tokens, self.output_tokens) {
            (Some(input), Some(output)) if self.stop_reason.is_some() => {
                LlmEvent::Usage { input_tokens: input, output_tokens: output, estimated: false }
            }
            // Cut before the final `message_delta`: the reported input is exact, the output
            // so far is at least what arrived.
            (input, output) => LlmEvent::Usage {
                input_tokens: input.unwrap_or(self.input_estimate),
                output_tokens: output.unwrap_or(0).max(estimated_output),
                estimated: true,
            },
        });
    }
}

impl Decoder {
    fn text(&mut self, text: String, out: &mut Vec<LlmEvent>) {
        if !text.is_empty() {
            self.output_chars += text.chars().count();
            out.push(LlmEvent::Token(text));
        }
    }

    fn usage(&mut self, u: Usage) {
        if let Some(input) = u.total_input().filter(|&n| n > 0) {
            self.input_tokens = Some(input);
        } else if self.input_tokens.is_none() {
            self.input_tokens = u.total_input();
        }
        if let Some(output) = u.output_tokens {
            self.output_tokens = Some(self.output_tokens.unwrap_or(0).max(output));
        }
    }
}

/// A tool without input streams no JSON at all: its arguments are the empty object.
fn finished(mut call: ToolCall) -> ToolCall {
    if call.arguments.trim().is_empty() {
        call.arguments = "{}".into();
    }
    call
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(payloads: &[&str]) -> (Vec<LlmEvent>, Result<Step, LlmError>) {
        crate::pump::decode_all(&mut Decoder::new(10), payloads)
    }

    /// The spec's example stream (llm.md D2), payloads verbatim.
    #[test]
    fn spec_text_stream() {
        let (out, end) = run(&[
            r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        assert_eq!(end, Ok(Step::Done));
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("Hello".into()),
                LlmEvent::Usage { input_tokens: 25, output_tokens: 15, estimated: false }
            ]
        );
    }

    #[test]
    fn tool_use_input_json_deltas_assemble_into_one_call() {
        let mut d = Decoder::new(0);
        let mut out = Vec::new();
        for p in [
            r#"{"type":"message_start","message":{"usage":{"input_tokens":40,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me check."}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"Paris\"}"}}"#,
        ] {
            assert_eq!(d.data(p, &mut out), Ok(Step::Continue));
        }
        assert_eq!(out, vec![LlmEvent::Token("Let me check.".into())]);
        out.clear();
        d.data(r#"{"type":"content_block_stop","index":1}"#, &mut out).unwrap();
        assert_eq!(out, vec![LlmEvent::ToolCall(ToolCall::new("toolu_01", "get_weather", "{\"city\": \"Paris\"}"))]);
        out.clear();
        d.data(
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}"#,
            &mut out,
        )
        .unwrap();
        assert_eq!(d.finish_reason(), Some("tool_use"));
        d.close(true, &mut out);
        assert_eq!(out, vec![LlmEvent::Usage { input_tokens: 40, output_tokens: 30, estimated: false }]);
    }

    #[test]
    fn tool_without_input_has_empty_object_arguments() {
        let (out, _) = run(&[
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"hang_up","input":{}}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        assert_eq!(out[0], LlmEvent::ToolCall(ToolCall::new("t", "hang_up", "{}")));
    }

    #[test]
    fn overloaded_error_event_after_tokens() {
        let (out, end) = run(&[
            r#"{"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Sure thing"}}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ]);
        assert_eq!(end, Err(LlmError::Server { status: 529 }));
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("Sure thing".into()),
                LlmEvent::Usage { input_tokens: 12, output_tokens: 4, estimated: true }
            ]
        );
        let (_, end) = run(&[r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#]);
        assert_eq!(end, Err(LlmError::RateLimited { retry_after_ms: None }));
        let (_, end) =
            run(&[r#"{"type":"error","error":{"type":"weird","message":"key sk-ant-abcdef0123456789 bad"}}"#]);
        assert_eq!(end, Err(LlmError::Stream("key sk-*** bad".into())));
    }

    #[test]
    fn gateway_input_in_message_delta_wins_over_zero() {
        let (out, _) = run(&[
            r#"{"type":"message_start","message":{"usage":{"input_tokens":0,"output_tokens":0}}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":33,"output_tokens":7}}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        assert_eq!(out, vec![LlmEvent::Usage { input_tokens: 33, output_tokens: 7, estimated: false }]);
    }

    #[test]
    fn cache_tokens_count_as_input_and_unknown_events_pass() {
        let (out, end) = run(&[
            r#"{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            r#"{"type":"some_future_event","x":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        assert_eq!(end, Ok(Step::Done));
        assert_eq!(out, vec![LlmEvent::Usage { input_tokens: 2105, output_tokens: 3, estimated: false }]);
        assert!(matches!(run(&["{nope"]).1, Err(LlmError::Stream(_))));
    }
}
