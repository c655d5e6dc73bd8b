//! `POST /v1/responses` (protocols/llm-more.md E1), shared with the Azure sim: the input parsed
//! into the common conversation, and the named-event stream OpenAI sends, event for event, with
//! incrementing `sequence_number`s and no `[DONE]`.

use super::handlers::ApiError;
use super::{Fault, Shared};
use crate::sim::paced::{self, Frame, Pacer};
use crate::sim::replies::{prompt_tokens, reply_for, tokens};
use crate::{Message, Role};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// A function call the sim makes instead of replying, for tests of tool-call handling (the
/// adapters declare no tools, so nothing real would make the model call one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolScript {
    pub name: String,
    /// The JSON arguments, streamed in a few deltas.
    pub arguments: String,
}

/// The script shared by a sim's handlers; `None` answers with text.
pub(in crate::sim) type Script = Arc<Mutex<Option<ToolScript>>>;

/// What the sim needs from a Responses request.
pub(in crate::sim) struct Request {
    pub model: String,
    pub messages: Vec<Message>,
    pub last_user_text: String,
    pub prompt_tokens: u64,
    pub stream: bool,
    pub max_output_tokens: Option<usize>,
}

/// Reads `model`, `instructions` and `input` (a string, or message / `function_call_output`
/// items whose content is a string or `input_text` parts).
pub(in crate::sim) fn parse(body: &[u8]) -> Result<Request, ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid("We could not parse the JSON body of your request.", None, None));
    };
    let Some(model) = req.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid(
            "Missing required parameter: 'model'.",
            Some("model".into()),
            Some("missing_required_parameter"),
        ));
    };
    let mut messages = Vec::new();
    if let Some(text) = req.get("instructions").and_then(Value::as_str) {
        messages.push(Message { role: Role::System, content: text.to_string() });
    }
    // Tool outputs count toward the prompt but are not conversation messages.
    let mut tool_output_tokens = 0;
    match req.get("input") {
        Some(Value::String(text)) => messages.push(Message { role: Role::User, content: text.clone() }),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
                if kind == "function_call_output" {
                    tool_output_tokens += prompt_tokens(item.get("output").and_then(Value::as_str).unwrap_or(""));
                    continue;
                }
                if kind != "message" {
                    continue;
                }
                let role = match item.get("role").and_then(Value::as_str) {
                    Some("system" | "developer") => Role::System,
                    Some("user") => Role::User,
                    Some("assistant") => Role::Assistant,
                    other => {
                        return Err(ApiError::invalid(
                            format!("Invalid value: {other:?}. Supported values are: 'user', 'assistant', 'system', and 'developer'."),
                            Some(format!("input[{i}].role")),
                            Some("invalid_value"),
                        ))
                    }
                };
                messages.push(Message { role, content: content_text(item.get("content")) });
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "Missing required parameter: 'input'.",
                Some("input".into()),
                Some("missing_required_parameter"),
            ))
        }
    }
    let prompt = tool_output_tokens + messages.iter().map(|m| prompt_tokens(&m.content)).sum::<u64>();
    let last_user_text =
        messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.clone()).unwrap_or_default();
    Ok(Request {
        model: model.to_string(),
        messages,
        last_user_text,
        prompt_tokens: prompt,
        stream: req.get("stream").and_then(Value::as_bool).unwrap_or(false),
        max_output_tokens: req
            .get("max_output_tokens")
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

/// One answer: the canned reply (or the scripted call), paced like the chat stream.
pub(in crate::sim) struct Plan {
    id: String,
    created: u64,
    model: String,
    tokens: Vec<String>,
    call: Option<ToolScript>,
    /// The reply was cut by `max_output_tokens`.
    truncated: bool,
    prompt_tokens: u64,
    drop_after: Option<usize>,
    first_token_delay: Duration,
    tokens_per_sec: f64,
    stop: CancellationToken,
    open: Arc<AtomicUsize>,
}

impl Plan {
    /// The answer to `req`; pacing, faults and shutdown come from the sim's settings.
    pub(in crate::sim) fn new(
        req: &Request,
        call: Option<ToolScript>,
        stop: CancellationToken,
        open: Arc<AtomicUsize>,
    ) -> Self {
        let reply = reply_for(&req.last_user_text);
        let mut toks: Vec<String> = tokens(&reply).into_iter().map(str::to_string).collect();
        let truncated = matches!(req.max_output_tokens, Some(max) if max < toks.len());
        if let Some(max) = req.max_output_tokens {
            toks.truncate(max);
        }
        Self {
            id: format!("resp_sim{}", uuid::Uuid::new_v4().simple()),
            created: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            model: req.model.clone(),
            tokens: toks,
            call,
            truncated,
            prompt_tokens: req.prompt_tokens,
            drop_after: None,
            first_token_delay: Duration::ZERO,
            tokens_per_sec: 0.0,
            stop,
            open,
        }
    }

    fn item_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.id.trim_start_matches("resp_"))
    }

    /// The function call's argument deltas: the arguments in pieces of at most 8 characters.
    fn argument_pieces(args: &str) -> Vec<String> {
        let chars: Vec<char> = args.chars().collect();
        chars.chunks(8).map(|c| c.iter().collect()).collect()
    }

    fn output_tokens(&self) -> usize {
        match &self.call {
            Some(call) => Self::argument_pieces(&call.arguments).len(),
            None => self.tokens.len(),
        }
    }

    fn output_item(&self, status: &str) -> Value {
        match &self.call {
            Some(call) => json!({
                "id": self.item_id("fc"), "type": "function_call", "status": status,
                "call_id": self.item_id("call"), "name": call.name,
                "arguments": if status == "in_progress" { "" } else { call.arguments.as_str() }
            }),
            None => {
                let content = if status != "in_progress" {
                    json!([{"type": "output_text", "text": self.tokens.concat(), "annotations": []}])
                } else {
                    json!([])
                };
                json!({"id": self.item_id("msg"), "type": "message", "status": status, "role": "assistant", "content": content})
            }
        }
    }

    /// The Response object at `status` (`in_progress`, `completed`, `incomplete`).
    pub(in crate::sim) fn object(&self, status: &str) -> Value {
        let done = status != "in_progress";
        let out = self.output_tokens() as u64;
        json!({
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "background": false, "error": null,
            "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
            "instructions": null, "max_output_tokens": null, "model": self.model,
            "output": if done { json!([self.output_item(if status == "incomplete" { "incomplete" } else { "completed" })]) } else { json!([]) },
            "parallel_tool_calls": true, "previous_response_id": null, "store": false,
            "temperature": 1.0, "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
            "usage": if done { json!({
                "input_tokens": self.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": out, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.prompt_tokens + out
            }) } else { Value::Null },
            "metadata": {}
        })
    }

    /// The final status: `incomplete` when `max_output_tokens` cut the reply.
    pub(in crate::sim) fn final_status(&self) -> &'static str {
        if self.truncated && self.call.is_none() {
            "incomplete"
        } else {
            "completed"
        }
    }

    fn schedule(&self) -> Vec<(Duration, Frame)> {
        let mut seq = 0u64;
        let mut ev = |mut v: Value| {
            let name = v["type"].as_str().unwrap_or_default().to_string();
            v["sequence_number"] = json!(seq);
            seq += 1;
            Frame::Data(paced::sse(Some(&name), &v))
        };
        let mut pacer = Pacer::new(self.first_token_delay, self.tokens_per_sec);
        let mut frames = Vec::with_capacity(self.tokens.len() + 10);
        let zero = Duration::ZERO;
        frames.push((zero, ev(json!({"type": "response.created", "response": self.object("in_progress")}))));
        frames.push((zero, ev(json!({"type": "response.in_progress", "response": self.object("in_progress")}))));
        frames.push((zero, ev(json!({"type": "response.output_item.added", "output_index": 0, "item": self.output_item("in_progress")}))));
        let pieces = match &self.call {
            Some(call) => Self::argument_pieces(&call.arguments),
            None => self.tokens.clone(),
        };
        let (item_id, delta_type) = match &self.call {
            Some(_) => (self.item_id("fc"), "response.function_call_arguments.delta"),
            None => {
                let id = self.item_id("msg");
                let part = json!({"type": "output_text", "text": "", "annotations": []});
                let added = json!({"type": "response.content_part.added", "item_id": id, "output_index": 0, "content_index": 0, "part": part});
                frames.push((zero, ev(added)));
                (id, "response.output_text.delta")
            }
        };
        for (i, piece) in pieces.iter().enumerate() {
            let at = pacer.next_token();
            if self.drop_after == Some(i) {
                frames.push((at, Frame::Cut));
                return frames;
            }
            let mut delta = json!({"type": delta_type, "item_id": item_id, "output_index": 0, "delta": piece});
            if self.call.is_none() {
                delta["content_index"] = json!(0);
                delta["logprobs"] = json!([]);
            }
            frames.push((at, ev(delta)));
        }
        let at = pacer.last();
        if self.drop_after.is_some() {
            frames.push((at, Frame::Cut));
            return frames;
        }
        let status = self.final_status();
        match &self.call {
            Some(call) => frames.push((
                at,
                ev(json!({
                    "type": "response.function_call_arguments.done", "item_id": item_id, "output_index": 0,
                    "name": call.name, "arguments": call.arguments
                })),
            )),
            None => {
                let text = self.tokens.concat();
                frames.push((
                    at,
                    ev(json!({
                        "type": "response.output_text.done", "item_id": item_id, "output_index": 0,
                        "content_index": 0, "text": text, "logprobs": []
                    })),
                ));
                frames.push((
                    at,
                    ev(json!({
                        "type": "response.content_part.done", "item_id": item_id, "output_index": 0, "content_index": 0,
                        "part": {"type": "output_text", "text": text, "annotations": []}
                    })),
                ));
            }
        }
        let item_status = if status == "incomplete" { "incomplete" } else { "completed" };
        frames.push((
            at,
            ev(json!({"type": "response.output_item.done", "output_index": 0, "item": self.output_item(item_status)})),
        ));
        frames.push((at, ev(json!({"type": format!("response.{status}"), "response": self.object(status)}))));
        frames
    }
}

/// The answer to an accepted request: the paced stream, or the whole Response object.
pub(in crate::sim) fn answer(
    shared: &Shared,
    req: &Request,
    call: Option<ToolScript>,
    fault: Option<Fault>,
) -> Response {
    shared.remember(&req.messages);
    let mut plan = Plan::new(req, call, shared.stop.clone(), shared.open_streams.clone());
    if !req.stream {
        return Json(plan.object(plan.final_status())).into_response();
    }
    plan.drop_after = match fault {
        Some(Fault::DropAfterTokens(n)) => Some(n),
        _ => None,
    };
    plan.first_token_delay = shared.first_token_delay;
    plan.tokens_per_sec = shared.tokens_per_sec;
    response(plan)
}

/// The paced `text/event-stream` body; it ends after the terminal event.
pub(in crate::sim) fn response(plan: Plan) -> Response {
    let frames = plan.schedule();
    paced::response(frames, plan.stop, plan.open)
}
