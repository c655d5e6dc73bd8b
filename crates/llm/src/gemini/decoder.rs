//! Turns the SSE payloads of one `streamGenerateContent` stream into [`LlmEvent`]s.
//!
//! `usageMetadata` may come on several chunks and change between them: the largest counts are
//! kept (the last chunk's are final) and emitted once at close. Function calls arrive whole;
//! one without Google's optional `id` gets one made from the response id and its position
//! (`gemini_call_<responseId>_<n>`), unique within the conversation and never sent back.

use super::wire::{Chunk, UsageMetadata, SYNTHETIC_ID_PREFIX};
use crate::error::scrub;
use crate::estimate::estimate_output_tokens;
use crate::pump::{Decode, Step};
use crate::{LlmError, LlmEvent, ToolCall};

#[derive(Debug)]
pub(crate) struct Decoder {
    finish_reason: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_estimate: u64,
    /// Characters of text and call arguments received, for the output estimate.
    output_chars: usize,
    /// Calls without Google's optional `id` are numbered.
    calls: usize,
    /// The first `responseId` seen, reduced to id characters.
    response_id: Option<String>,
    /// A signature that came on a part of its own, for the next call.
    signature: Option<String>,
}

/// Longest response id kept in a made-up call id (Bedrock and Anthropic cap ids at 64 chars
/// should the conversation move there).
const MAX_RESPONSE_ID: usize = 32;

impl Decoder {
    /// `input_estimate` is billed if the provider never reports usage.
    pub(crate) fn new(input_estimate: u64) -> Self {
        Self {
            finish_reason: None,
            input_tokens: None,
            output_tokens: None,
            input_estimate,
            output_chars: 0,
            calls: 0,
            response_id: None,
            signature: None,
        }
    }

    /// `gemini_call_<responseId>_<n>`, ids limited to `[A-Za-z0-9_-]` as Anthropic and Bedrock
    /// require of tool-use ids.
    fn synthetic_id(&self) -> String {
        match &self.response_id {
            Some(rid) => format!("{SYNTHETIC_ID_PREFIX}{rid}_{}", self.calls),
            None => format!("{SYNTHETIC_ID_PREFIX}{}", self.calls),
        }
    }

    fn usage(&mut self, u: UsageMetadata) {
        if let Some(p) = u.prompt_token_count {
            self.input_tokens = Some(self.input_tokens.unwrap_or(0).max(p));
        }
        let output = match (u.candidates_token_count, u.thoughts_token_count) {
            (None, None) => None,
            // Saturating: both counts are the provider's numbers.
            (c, t) => Some(c.unwrap_or(0).saturating_add(t.unwrap_or(0))),
        };
        if let Some(o) = output {
            self.output_tokens = Some(self.output_tokens.unwrap_or(0).max(o));
        }
    }
}

impl Decode for Decoder {
    fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    fn data(&mut self, data: &str, out: &mut Vec<LlmEvent>) -> Result<Step, LlmError> {
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| LlmError::Stream(format!("malformed chunk: {e}")))?;
        if let Some(err) = chunk.error {
            return Err(match (&err.status, err.code) {
                (None, None) => LlmError::Stream(
                    err.message.as_deref().map(scrub).unwrap_or_else(|| "the provider sent an error event".into()),
                ),
                (_, code) => err.to_llm_error(code.unwrap_or(500), None),
            });
        }
        if let Some(u) = chunk.usage_metadata {
            self.usage(u);
        }
        if let (None, Some(rid)) = (&self.response_id, chunk.response_id) {
            let rid: String =
                rid.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(MAX_RESPONSE_ID).collect();
            self.response_id = Some(rid).filter(|r| !r.is_empty());
        }
        let candidates = chunk.candidates.unwrap_or_default();
        if candidates.is_empty() {
            if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
                return Err(LlmError::BadRequest(format!("the provider blocked the prompt ({})", scrub(&reason))));
            }
        }
        // One candidate is requested; others (if any) are ignored.
        if let Some(candidate) = candidates.into_iter().next() {
            let parts = candidate.content.and_then(|c| c.parts).unwrap_or_default();
            for part in parts {
                let signature = part.thought_signature.filter(|s| !s.is_empty());
                if let Some(call) = part.function_call {
                    let arguments = call.args.map_or_else(|| "{}".to_string(), |a| a.to_string());
                    self.output_chars += arguments.chars().count();
                    self.calls += 1;
                    let id = call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| self.synthetic_id());
                    let signature = signature.or_else(|| self.signature.take());
                    out.push(LlmEvent::ToolCall(ToolCall { id, name: call.name, arguments, signature }));
                } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    if part.thought != Some(true) {
                        self.output_chars += text.chars().count();
                        out.push(LlmEvent::Token(text));
                    }
                } else if signature.is_some() {
                    self.signature = signature;
                }
            }
            if let Some(reason) = candidate.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        Ok(Step::Continue)
    }

    fn close(&mut self, completed: bool, out: &mut Vec<LlmEvent>) {
        let estimated_output = estimate_output_tokens(self.output_chars);
        out.push(match (self.input_tokens, self.output_tokens) {
            (Some(input), Some(output)) if completed && self.finish_reason.is_some() => {
                LlmEvent::Usage { input_tokens: input, output_tokens: output, estimated: false }
            }
            // Cut before the final chunk: a partial snapshot is a lower bound.
            (input, output) => LlmEvent::Usage {
                input_tokens: input.unwrap_or(0).max(self.input_estimate),
                output_tokens: output.unwrap_or(0).max(estimated_output),
                estimated: true,
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_token_counts_saturate() {
        // Found by the `llm_wire` fuzz harness's hostile inputs: candidates plus thoughts overflowed u64.
        let (out, end, _) = run(&[
            r#"{"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":18446744073709551615,"thoughtsTokenCount":1}}"#,
        ]);
        assert_eq!(end, Ok(Step::Continue));
        assert!(matches!(out.last(), Some(LlmEvent::Usage { output_tokens: u64::MAX, .. })), "{out:?}");
    }

    fn run(payloads: &[&str]) -> (Vec<LlmEvent>, Result<Step, LlmError>, Option<String>) {
        let mut d = Decoder::new(10);
        let mut out = Vec::new();
        let mut last = Ok(Step::Continue);
        for p in payloads {
            last = d.data(p, &mut out);
            if last.is_err() {
                break;
            }
        }
        // The body ends after the last chunk: the pump calls this a normal end when a
        // finish reason arrived.
        d.close(last.is_ok() && d.finish_reason().is_some(), &mut out);
        (out, last, d.finish_reason.clone())
    }

    /// The spec's chunk (llm.md D3) after a leading usage-only chunk; usage is assigned.
    #[test]
    fn spec_chunk_with_changing_usage() {
        let (out, end, finish) = run(&[
            r#"{"usageMetadata":{"promptTokenCount":15,"totalTokenCount":15}}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}],"usageMetadata":{"promptTokenCount":15,"candidatesTokenCount":2,"totalTokenCount":17}}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":15,"candidatesTokenCount":6,"totalTokenCount":21,"thoughtsTokenCount":0,"cachedContentTokenCount":0},"modelVersion":"gemini-x","responseId":"r1"}"#,
        ]);
        assert_eq!(end, Ok(Step::Continue));
        assert_eq!(finish.as_deref(), Some("STOP"));
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("Hel".into()),
                LlmEvent::Token("lo".into()),
                LlmEvent::Usage { input_tokens: 15, output_tokens: 6, estimated: false }
            ]
        );
    }

    #[test]
    fn function_call_arrives_whole_and_thoughts_are_silent() {
        let (out, _, _) = run(&[
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"thinking...","thought":true},{"thoughtSignature":"abc"},{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"thoughtsTokenCount":7}}"#,
        ]);
        assert_eq!(
            out,
            vec![
                LlmEvent::ToolCall(ToolCall {
                    id: "gemini_call_1".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into(),
                    signature: Some("abc".into()),
                }),
                LlmEvent::Usage { input_tokens: 20, output_tokens: 12, estimated: false }
            ]
        );
    }

    /// Parallel calls come as parts of one chunk; Gemini's `finishReason` stays `STOP`.
    #[test]
    fn parallel_calls_in_order_with_ids_from_the_response() {
        let (out, end, finish) = run(&[
            r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"a","args":{"x":1}},"thoughtSignature":"c2ln"},{"functionCall":{"name":"b"}},{"functionCall":{"id":"given","name":"c","args":{}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4},"responseId":"Ab/c+1"}"#,
        ]);
        assert_eq!(end, Ok(Step::Continue));
        assert_eq!(finish.as_deref(), Some("STOP"));
        let call = |id: &str, name: &str, arguments: &str, signature: Option<&str>| {
            let signature = signature.map(str::to_string);
            LlmEvent::ToolCall(ToolCall { id: id.into(), name: name.into(), arguments: arguments.into(), signature })
        };
        assert_eq!(
            out,
            vec![
                call("gemini_call_Abc1_1", "a", r#"{"x":1}"#, Some("c2ln")),
                call("gemini_call_Abc1_2", "b", "{}", None),
                call("given", "c", "{}", None),
                LlmEvent::Usage { input_tokens: 9, output_tokens: 4, estimated: false }
            ]
        );
    }

    #[test]
    fn errors_and_blocks() {
        let (out, end, _) = run(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"Hi there"}]}}],"usageMetadata":{"promptTokenCount":30}}"#,
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
        ]);
        assert_eq!(end, Err(LlmError::Server { status: 503 }));
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("Hi there".into()),
                LlmEvent::Usage { input_tokens: 30, output_tokens: 3, estimated: true }
            ]
        );
        let (_, end, _) = run(&[r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#]);
        assert_eq!(end, Err(LlmError::BadRequest("the provider blocked the prompt (SAFETY)".into())));
        let (_, end, _) = run(&[r#"{"error":{"message":"boom"}}"#]);
        assert_eq!(end, Err(LlmError::Stream("boom".into())));
        assert!(matches!(run(&["[1,"]).1, Err(LlmError::Stream(_))));
    }

    #[test]
    fn no_usage_is_estimated() {
        let (out, _, _) = run(&[r#"{"candidates":[{"content":{"parts":[{"text":"abcdef"}]},"finishReason":"STOP"}]}"#]);
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("abcdef".into()),
                LlmEvent::Usage { input_tokens: 10, output_tokens: 2, estimated: true }
            ]
        );
    }
}
