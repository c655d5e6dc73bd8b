//! Anthropic Messages simulator (protocols/llm.md D2): `POST /v1/messages` streaming or not,
//! `GET /v1/models`, Anthropic's error bodies (`{"type":"error","error":{type,message}}`),
//! scripted faults (`Fault::Status(529)` is `overloaded_error`); answering the way
//! api.anthropic.com does. The base URL is the bare host; the adapter adds `/v1/messages`.
//!
//! Tools (`tools`, `tool_choice`, `tool_use`/`tool_result` blocks) follow the shared rule of
//! `crate::tools`: calls stream as `tool_use` blocks with `input_json_delta` fragments and
//! `stop_reason: "tool_use"`; unpaired calls and results, or tool blocks without `tools`, are
//! `invalid_request_error`s.

mod request;
mod stream;
#[cfg(test)]
mod tests;

use crate::paced;
use crate::routes::{get, post, Answer, Routes};
use crate::server::{ok_json, status_code, Call};
use serde_json::{json, Value};
use simkit::{Reply, Request};
use stream::Plan;

/// Models listed by `GET /v1/models`; any model name is accepted for messages.
const MODELS: [(&str, &str); 2] =
    [("claude-haiku-4-5", "Claude Haiku 4.5"), ("claude-sonnet-4-5", "Claude Sonnet 4.5")];
/// The `retry-after` (seconds) sent with a scripted 429.
const RETRY_AFTER_S: &str = "2";

pub(crate) static ROUTES: Routes =
    Routes { endpoints: &[post("/v1/messages", messages), get("/v1/models", models)], fallback: not_found };

fn not_found(_: &Request) -> Reply {
    error(404, "not_found_error", "Not Found")
}

/// A refusal, rendered by [`error`].
struct ApiError {
    status: u16,
    kind: &'static str,
    message: String,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        error(e.status, e.kind, &e.message)
    }
}

/// `{"type":"error","error":{"type","message"},"request_id"}` with a `request-id` header.
fn error(status: u16, kind: &str, message: &str) -> Reply {
    let id = format!("req_sim{}", uuid::Uuid::new_v4().simple());
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": id});
    Reply::json(status, body.to_string()).header("request-id", id)
}

/// Checks `x-api-key`; the key is never echoed back.
fn authorize(call: &Call) -> Result<(), ApiError> {
    let Some(key) = call.header_key("x-api-key") else {
        return Err(ApiError {
            status: 401,
            kind: "authentication_error",
            message: "x-api-key header is required".into(),
        });
    };
    if !call.check_key(key) {
        return Err(ApiError { status: 401, kind: "authentication_error", message: "invalid x-api-key".into() });
    }
    if call.req.header("anthropic-version").is_none() {
        return Err(ApiError {
            status: 400,
            kind: "invalid_request_error",
            message: "anthropic-version: header is required".into(),
        });
    }
    Ok(())
}

fn fault_response(status: u16) -> Reply {
    let status = status_code(status);
    let (kind, message) = match status {
        400 => ("invalid_request_error", "Your request was malformed."),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => ("permission_error", "Your API key does not have permission to use the specified resource."),
        404 => ("not_found_error", "The requested resource could not be found."),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429 => ("rate_limit_error", "This request would exceed the rate limit for your organization."),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    let reply = error(status, kind, message);
    match status {
        429 => reply.header("retry-after", RETRY_AFTER_S),
        _ => reply,
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError { status: 400, kind: "invalid_request_error", message: message.into() }
}

fn messages(call: &Call) -> Answer {
    let body = &call.req.body;
    let (req, drop_after) = call.admit(authorize, fault_response, || request::parse(body))?;
    call.sim.keep_body(body);
    let turn = call.sim.turn(&req.conversation, Some(req.max_tokens));
    let stop_reason = match (turn.calls.is_empty(), turn.truncated) {
        (false, _) => "tool_use",
        (true, true) => "max_tokens",
        (true, false) => "end_turn",
    };
    let id = format!("msg_sim{}", uuid::Uuid::new_v4().simple());
    if !req.stream {
        let content: Vec<Value> = match turn.calls.is_empty() {
            true => vec![json!({"type": "text", "text": turn.text()})],
            false => turn.calls.iter().map(stream::tool_use_block).collect(),
        };
        return ok_json(&json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {"input_tokens": turn.prompt_tokens, "output_tokens": turn.output_tokens(), "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }));
    }
    let plan = Plan { id, model: req.model, stop_reason, turn, drop_after };
    Ok(paced::sse_stream(plan.schedule(call.sim.pacer())))
}

fn models(call: &Call) -> Answer {
    authorize(call)?;
    let limit = call.query("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(20).clamp(1, 1000);
    let data: Vec<Value> = MODELS
        .iter()
        .take(limit)
        .map(
            |(id, name)| json!({"type": "model", "id": id, "display_name": name, "created_at": "2025-10-01T00:00:00Z"}),
        )
        .collect();
    let first = data.first().map(|m| m["id"].clone());
    let last = data.last().map(|m| m["id"].clone());
    ok_json(&json!({"data": data, "has_more": limit < MODELS.len(), "first_id": first, "last_id": last}))
}
