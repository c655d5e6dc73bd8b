//! Turns the SSE `data` payloads of one Chat Completions stream into [`LlmEvent`]s.
//!
//! Usage is held back and emitted exactly once by [`Decoder::close`]: the meter adds what it
//! gets, and incremental reporters (older xAI) send growing totals.
//!
//! Tool calls are emitted whole, in index order (parallel calls included), when their choice
//! finishes. A finish that came with calls is reported as `tool_calls` even when the server
//! said `""` (xAI, per litellm's `XAIChatConfig`) or `stop` (some compatible servers), so the
//! caller can rely on it.

use super::tool_calls::ToolCalls;
use super::wire::{Chunk, ErrorEnvelope, Usage};
use crate::error::scrub;
use crate::pump::{Decode, Step};
use crate::{LlmError, LlmEvent};

#[derive(Debug)]
pub(crate) struct Decoder {
    tools: ToolCalls,
    /// A tool call was emitted.
    called: bool,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    input_estimate: u64,
    /// Characters of text and tool arguments received, for the output estimate.
    output_chars: usize,
}

impl Decoder {
    /// `input_estimate` is billed if the provider never reports usage.
    pub(crate) fn new(input_estimate: u64) -> Self {
        Self {
            tools: ToolCalls::default(),
            called: false,
            finish_reason: None,
            usage: None,
            input_estimate,
            output_chars: 0,
        }
    }
}

impl Decoder {
    /// A choice finished: its calls go out, and a finish with calls reads `tool_calls`.
    fn finish(&mut self, reason: String, out: &mut Vec<LlmEvent>) {
        let before = out.len();
        out.extend(self.tools.take().map(LlmEvent::ToolCall));
        self.called |= out.len() > before;
        let vague = reason.is_empty() || reason == "stop";
        self.finish_reason = Some(if self.called && vague { "tool_calls".into() } else { reason });
    }
}

impl Decode for Decoder {
    fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    fn data(&mut self, data: &str, out: &mut Vec<LlmEvent>) -> Result<Step, LlmError> {
        if data.starts_with("[DONE]") {
            return Ok(Step::Done);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| LlmError::Stream(format!("malformed chunk: {e}")))?;
        if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
            let env = ErrorEnvelope { error: Some(error) };
            let msg = env.message().map(scrub).unwrap_or_else(|| "the provider sent an error event".into());
            return Err(LlmError::Stream(msg));
        }
        for choice in chunk.choices.into_iter().flatten() {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    self.output_chars += text.chars().count();
                    out.push(LlmEvent::Token(text));
                }
                for call in delta.tool_calls.into_iter().flatten() {
                    self.output_chars += self.tools.push(call);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish(reason, out);
            }
        }
        if let Some(u) = chunk.usage.or(chunk.x_groq.and_then(|x| x.usage)) {
            let prev = self.usage.unwrap_or_default();
            self.usage = Some(Usage {
                prompt_tokens: prev.prompt_tokens.max(u.prompt_tokens),
                completion_tokens: prev.completion_tokens.max(u.completion_tokens),
            });
        }
        Ok(Step::Continue)
    }

    fn close(&mut self, completed: bool, out: &mut Vec<LlmEvent>) {
        let calls = self.tools.take();
        if completed {
            out.extend(calls.map(LlmEvent::ToolCall));
        }
        let reported = self.usage.as_ref().map(|u| (u.prompt_tokens, u.completion_tokens));
        out.push(crate::pump::usage_or_estimate(reported, self.input_estimate, self.output_chars));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolCall;

    fn run(payloads: &[&str]) -> (Vec<LlmEvent>, Result<Step, LlmError>) {
        crate::pump::decode_all(&mut Decoder::new(10), payloads)
    }

    #[test]
    fn text_stream_with_usage() {
        let (out, end) = run(&[
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null,"obfuscation":"xyz"}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
            "[DONE]",
        ]);
        assert_eq!(end, Ok(Step::Done));
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("Hello".into()),
                LlmEvent::Usage { input_tokens: 12, output_tokens: 5, estimated: false }
            ]
        );
    }

    /// The spec's tool-call example, verbatim apart from the elided envelope fields.
    #[test]
    fn tool_call_deltas_assemble_into_one_call() {
        let mut d = Decoder::new(0);
        let mut out = Vec::new();
        for p in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}"#,
        ] {
            assert_eq!(d.data(p, &mut out), Ok(Step::Continue));
            assert!(out.is_empty(), "no call before the choice finishes");
        }
        d.data(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#, &mut out).unwrap();
        assert_eq!(out, vec![LlmEvent::ToolCall(ToolCall::new("call_abc", "get_weather", "{\"city\":\"Paris\"}"))]);
        assert_eq!(d.finish_reason(), Some("tool_calls"));
        out.clear();
        d.close(true, &mut out);
        // Estimated output covers the 16 argument characters.
        assert_eq!(out, vec![LlmEvent::Usage { input_tokens: 0, output_tokens: 6, estimated: true }]);
    }

    #[test]
    fn parallel_calls_come_out_in_index_order_at_stream_end() {
        let (out, _) = run(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"two","arguments":"{}"}},{"index":0,"id":"a","function":{"name":"one","arguments":"{"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}}]}"#,
            "[DONE]",
        ]);
        let names: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                LlmEvent::ToolCall(c) => Some((c.id.as_str(), c.name.as_str(), c.arguments.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(names, vec![("a", "one", "{}"), ("b", "two", "{}")]);
    }

    /// Two calls in parallel, then a finish the server left empty (xAI) or called `stop`.
    #[test]
    fn parallel_calls_with_a_vague_finish_read_tool_calls() {
        for reason in ["", "stop"] {
            let mut d = Decoder::new(0);
            let mut out = Vec::new();
            for p in [
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"one","arguments":""}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"two","arguments":"{\"a\":1}"}}]}}]}"#,
            ] {
                d.data(p, &mut out).unwrap();
            }
            let finish = format!(r#"{{"choices":[{{"index":0,"delta":{{}},"finish_reason":"{reason}"}}]}}"#);
            d.data(&finish, &mut out).unwrap();
            let ids: Vec<_> = out
                .iter()
                .filter_map(|e| match e {
                    LlmEvent::ToolCall(c) => Some((c.id.as_str(), c.arguments.as_str())),
                    _ => None,
                })
                .collect();
            assert_eq!(ids, [("call_1", "{}"), ("call_2", r#"{"a":1}"#)]);
            assert_eq!(d.finish_reason(), Some("tool_calls"), "{reason:?}");
        }
        let mut d = Decoder::new(0);
        d.data(r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}"#, &mut Vec::new())
            .unwrap();
        assert_eq!(d.finish_reason(), Some("stop"), "text alone keeps its finish");
    }

    #[test]
    fn mid_stream_error_object_is_a_stream_error_and_scrubbed() {
        let (out, end) = run(&[
            r#"{"choices":[{"index":0,"delta":{"content":"Hi there"}}]}"#,
            r#"{"error":{"message":"key sk-live-1234567890abcdef overloaded","type":"server_error"}}"#,
        ]);
        assert_eq!(end, Err(LlmError::Stream("key sk-*** overloaded".into())));
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("Hi there".into()),
                LlmEvent::Usage { input_tokens: 10, output_tokens: 3, estimated: true }
            ]
        );
    }

    #[test]
    fn malformed_json_is_a_stream_error() {
        let (_, end) = run(&["{not json"]);
        assert!(matches!(end, Err(LlmError::Stream(_))));
    }

    #[test]
    fn groq_and_incremental_usage() {
        let (out, _) = run(&[
            r#"{"choices":[],"x_groq":{"usage":{"prompt_tokens":7,"completion_tokens":2}}}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":9}}"#,
            "[DONE]",
        ]);
        assert_eq!(out, vec![LlmEvent::Usage { input_tokens: 7, output_tokens: 9, estimated: false }]);
    }
}
