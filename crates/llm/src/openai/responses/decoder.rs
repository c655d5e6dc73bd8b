//! Turns the events of one Responses stream into [`LlmEvent`]s.
//!
//! Responses has no `finish_reason`; the decoder reports the Chat Completions value the rest of
//! the system already knows: `stop`, `tool_calls` (the output holds function calls), `length`
//! (`incomplete` for `max_output_tokens`) or `content_filter`.

use super::wire::{ErrorBody, Event, Item, Response, Usage};
use crate::error::scrub;
use crate::pump::{Decode, Step};
use crate::{LlmError, LlmEvent, ToolCall};

#[derive(Debug)]
pub(crate) struct Decoder {
    /// Function calls still streaming, by output item id (`fc_…`).
    calls: Vec<(String, ToolCall)>,
    called: bool,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    input_estimate: u64,
    /// Characters of text and tool arguments received, for the output estimate.
    output_chars: usize,
}

impl Decoder {
    /// `input_estimate` is billed if the stream ends without a terminal event.
    pub(crate) fn new(input_estimate: u64) -> Self {
        Self { calls: Vec::new(), called: false, finish_reason: None, usage: None, input_estimate, output_chars: 0 }
    }

    fn call(&mut self, item_id: &str) -> Option<&mut ToolCall> {
        self.calls.iter_mut().find(|(id, _)| id == item_id).map(|(_, c)| c)
    }

    /// A finished output item: a function call is emitted whole, with the item's own fields
    /// preferred over what the deltas built.
    fn item_done(&mut self, item: Item, out: &mut Vec<LlmEvent>) {
        if item.kind != "function_call" {
            return;
        }
        let id = item.id.unwrap_or_default();
        let mut call = match self.calls.iter().position(|(i, _)| *i == id) {
            Some(at) => self.calls.remove(at).1,
            None => ToolCall::new(String::new(), String::new(), String::new()),
        };
        if let Some(call_id) = item.call_id.filter(|c| !c.is_empty()) {
            call.id = call_id;
        }
        if let Some(name) = item.name.filter(|n| !n.is_empty()) {
            call.name = name;
        }
        if let Some(args) = item.arguments.filter(|a| !a.is_empty()) {
            call.arguments = args;
        }
        if call.name.is_empty() {
            tracing::warn!("dropping a streamed function call without a name");
            return;
        }
        self.called = true;
        out.push(LlmEvent::ToolCall(call));
    }

    fn finish(&mut self, response: Response, reason: String) -> Step {
        self.usage = response.usage.or(self.usage);
        self.finish_reason = Some(reason);
        Step::Done
    }
}

/// A mid-stream failure as the matching HTTP refusal would map (E7: retry classes).
fn failure(error: Option<ErrorBody>, fallback: &str) -> LlmError {
    let error = error.unwrap_or_default();
    match error.code.as_deref() {
        Some("rate_limit_exceeded") => LlmError::RateLimited { retry_after_ms: None },
        Some("server_error") => LlmError::Server { status: 500 },
        code => {
            let text = error.message.filter(|m| !m.trim().is_empty()).or(code.map(str::to_string));
            LlmError::Stream(text.as_deref().map(scrub).unwrap_or_else(|| fallback.to_string()))
        }
    }
}

impl Decode for Decoder {
    fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    fn data(&mut self, data: &str, out: &mut Vec<LlmEvent>) -> Result<Step, LlmError> {
        let event: Event = serde_json::from_str(data).map_err(|e| LlmError::Stream(format!("malformed event: {e}")))?;
        match event {
            Event::TextDelta { delta } => {
                if !delta.is_empty() {
                    self.output_chars += delta.chars().count();
                    out.push(LlmEvent::Token(delta));
                }
            }
            Event::ItemAdded { item } if item.kind == "function_call" => {
                let call = ToolCall::new(
                    item.call_id.unwrap_or_default(),
                    item.name.unwrap_or_default(),
                    item.arguments.unwrap_or_default(),
                );
                self.calls.push((item.id.unwrap_or_default(), call));
            }
            Event::ItemAdded { .. } | Event::Other => {}
            Event::ArgumentsDelta { item_id, delta } => {
                self.output_chars += delta.chars().count();
                if let Some(call) = self.call(&item_id) {
                    call.arguments.push_str(&delta);
                }
            }
            Event::ArgumentsDone { item_id, arguments } => {
                if let Some(call) = self.call(&item_id) {
                    call.arguments = arguments;
                }
            }
            Event::ItemDone { item } => self.item_done(item, out),
            Event::Completed { response } => {
                let reason = if self.called { "tool_calls" } else { "stop" };
                return Ok(self.finish(response, reason.into()));
            }
            Event::Incomplete { response } => {
                let reason = match response.incomplete_details.as_ref().and_then(|d| d.reason.as_deref()) {
                    Some("max_output_tokens") | None => "length".to_string(),
                    Some(other) => other.to_string(),
                };
                return Ok(self.finish(response, reason));
            }
            Event::Failed { response } => {
                self.usage = response.usage.or(self.usage);
                return Err(failure(response.error, "the response failed"));
            }
            Event::Error { code, message, error } => {
                let flat = ErrorBody { code, message };
                return Err(failure(Some(error.unwrap_or(flat)), "the provider sent an error event"));
            }
        }
        Ok(Step::Continue)
    }

    fn close(&mut self, _completed: bool, out: &mut Vec<LlmEvent>) {
        // A call without `output_item.done` was cut: its arguments may be partial.
        if !self.calls.is_empty() {
            tracing::warn!(calls = self.calls.len(), "dropping function calls the stream never finished");
            self.calls.clear();
        }
        let reported = self.usage.as_ref().map(|u| (u.input_tokens, u.output_tokens));
        out.push(crate::pump::usage_or_estimate(reported, self.input_estimate, self.output_chars));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(payloads: &[&str]) -> (Vec<LlmEvent>, Result<Step, LlmError>) {
        crate::pump::decode_all(&mut Decoder::new(10), payloads)
    }

    const CREATED: &str = r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1760000000,"status":"in_progress","model":"gpt-4.1-mini","output":[],"usage":null}}"#;

    /// The spec's text stream, event for event.
    #[test]
    fn text_stream_with_usage() {
        let (out, end) = run(&[
            CREATED,
            r#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","status":"in_progress","usage":null}}"#,
            r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
            r#"{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#,
            r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"It's 21","logprobs":[],"obfuscation":"ab"}"#,
            r#"{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" degrees.","logprobs":[]}"#,
            r#"{"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"It's 21 degrees.","logprobs":[]}"#,
            r#"{"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"It's 21 degrees.","annotations":[]}]}}"#,
            r#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":42,"input_tokens_details":{"cached_tokens":0},"output_tokens":6,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}}}"#,
        ]);
        assert_eq!(end, Ok(Step::Done));
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("It's 21".into()),
                LlmEvent::Token(" degrees.".into()),
                LlmEvent::Usage { input_tokens: 42, output_tokens: 6, estimated: false }
            ]
        );
    }

    /// The spec's function-call stream: keyed by `call_id`, arguments from the deltas.
    #[test]
    fn function_call_assembles_and_finishes_as_tool_calls() {
        let mut d = Decoder::new(0);
        let mut out = Vec::new();
        for p in [
            r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"fc_1","type":"function_call","status":"in_progress","call_id":"call_abc","name":"get_weather","arguments":""}}"#,
            r#"{"type":"response.function_call_arguments.delta","sequence_number":3,"item_id":"fc_1","output_index":0,"delta":"{\"city\":"}"#,
            r#"{"type":"response.function_call_arguments.delta","sequence_number":4,"item_id":"fc_1","output_index":0,"delta":"\"Paris\"}"}"#,
            r#"{"type":"response.function_call_arguments.done","sequence_number":5,"item_id":"fc_1","output_index":0,"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}"#,
        ] {
            assert_eq!(d.data(p, &mut out), Ok(Step::Continue));
        }
        assert!(out.is_empty(), "no call before its item is done");
        d.data(r#"{"type":"response.output_item.done","sequence_number":6,"output_index":0,"item":{"id":"fc_1","type":"function_call","status":"completed","call_id":"call_abc","name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}"#, &mut out).unwrap();
        let call = ToolCall::new("call_abc", "get_weather", "{\"city\":\"Paris\"}");
        assert_eq!(out, vec![LlmEvent::ToolCall(call)]);
        let end = d.data(r#"{"type":"response.completed","sequence_number":7,"response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":7}}}"#, &mut out);
        assert_eq!(end, Ok(Step::Done));
        assert_eq!(d.finish_reason(), Some("tool_calls"));
    }

    #[test]
    fn incomplete_is_a_length_finish_with_usage() {
        let (out, end) = run(&[
            r#"{"type":"response.output_text.delta","item_id":"m","delta":"Once"}"#,
            r#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":9,"output_tokens":1}}}"#,
        ]);
        assert_eq!(end, Ok(Step::Done));
        assert_eq!(out[1], LlmEvent::Usage { input_tokens: 9, output_tokens: 1, estimated: false });
    }

    /// Both mid-stream error shapes, and `response.failed` by its retry class.
    #[test]
    fn errors_and_failures() {
        let nested = r#"{"type":"error","sequence_number":3,"error":{"type":"invalid_request_error","code":"bad","message":"key sk-abcdefghijkl bad","param":null}}"#;
        assert_eq!(run(&[nested]).1, Err(LlmError::Stream("key sk-*** bad".into())));
        let flat = r#"{"type":"error","sequence_number":3,"code":"server_error","message":"boom","param":null}"#;
        assert_eq!(run(&[flat]).1, Err(LlmError::Server { status: 500 }));
        let failed = r#"{"type":"response.failed","sequence_number":5,"response":{"status":"failed","error":{"code":"rate_limit_exceeded","message":"slow down"},"usage":{"input_tokens":3,"output_tokens":0}}}"#;
        let (out, end) = run(&[failed]);
        assert_eq!(end, Err(LlmError::RateLimited { retry_after_ms: None }));
        assert_eq!(out, vec![LlmEvent::Usage { input_tokens: 3, output_tokens: 0, estimated: false }]);
        assert!(matches!(run(&["{nope"]).1, Err(LlmError::Stream(_))));
    }

    #[test]
    fn cut_stream_estimates_and_drops_unfinished_calls() {
        let (out, end) = run(&[
            r#"{"type":"response.output_item.added","item":{"id":"fc_1","type":"function_call","call_id":"c","name":"f","arguments":""}}"#,
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc_1","delta":"{\"a\":"}"#,
            r#"{"type":"response.some_future_event","whatever":1}"#,
        ]);
        assert_eq!(end, Ok(Step::Continue));
        assert_eq!(out, vec![LlmEvent::Usage { input_tokens: 10, output_tokens: 2, estimated: true }]);
    }
}
