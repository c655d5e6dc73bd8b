//! Routes, auth and request validation, answering the way api.anthropic.com does.

use super::stream::Plan;
use super::{Fault, Shared};
use crate::sim::replies::{prompt_tokens, reply_for, tokens};
use crate::{Message, Role};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Models listed by `GET /v1/models`; any model name is accepted for messages.
const MODELS: [(&str, &str); 2] =
    [("claude-haiku-4-5", "Claude Haiku 4.5"), ("claude-sonnet-4-5", "Claude Sonnet 4.5")];
/// The `retry-after` (seconds) sent with a scripted 429.
pub(super) const RETRY_AFTER_S: &str = "2";

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found_error", "Not Found") })
        .with_state(shared)
}

/// A refusal, rendered by [`error`].
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.kind, &self.message)
    }
}

/// `{"type":"error","error":{"type","message"},"request_id"}` with a `request-id` header.
pub(super) fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let id = format!("req_sim{}", uuid::Uuid::new_v4().simple());
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": id});
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::try_from(id) {
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

/// Checks `x-api-key`; the key is never echoed back.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            message: "x-api-key header is required".into(),
        });
    };
    shared.saw_key(key);
    if !shared.keys.contains(key) {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            message: "invalid x-api-key".into(),
        });
    }
    if headers.get("anthropic-version").is_none() {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: "anthropic-version: header is required".into(),
        });
    }
    Ok(())
}

fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, message) = match status.as_u16() {
        400 => ("invalid_request_error", "Your request was malformed."),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => ("permission_error", "Your API key does not have permission to use the specified resource."),
        404 => ("not_found_error", "The requested resource could not be found."),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429 => ("rate_limit_error", "This request would exceed the rate limit for your organization."),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    let mut resp = error(status, kind, message);
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert("retry-after", HeaderValue::from_static(RETRY_AFTER_S));
    }
    resp
}

/// What the sim needs from a Messages request.
struct Request {
    model: String,
    /// The system prompt first (if any), then the turns.
    messages: Vec<Message>,
    last_user_text: String,
    prompt_tokens: u64,
    stream: bool,
    max_tokens: usize,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, kind: "invalid_request_error", message: message.into() }
}

fn parse(body: &[u8]) -> Result<Request, ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("There was an issue with your request body: invalid JSON"));
    };
    let Some(model) = req.get("model").and_then(Value::as_str) else {
        return Err(invalid("model: Field required"));
    };
    let Some(max_tokens) = req.get("max_tokens").and_then(Value::as_u64) else {
        return Err(invalid("max_tokens: Field required"));
    };
    let Some(raw) = req.get("messages").and_then(Value::as_array) else {
        return Err(invalid("messages: Field required"));
    };
    let mut messages = Vec::with_capacity(raw.len() + 1);
    let mut prompt = 0;
    let system = text_of(req.get("system"));
    if !system.is_empty() {
        prompt += prompt_tokens(&system);
        messages.push(Message { role: Role::System, content: system });
    }
    let mut last_user_text = String::new();
    for (i, m) in raw.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some(other) => {
                return Err(invalid(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant' (got '{other}')"
                )))
            }
            None => return Err(invalid(format!("messages.{i}.role: Field required"))),
        };
        let text = text_of(m.get("content"));
        if text.is_empty() && !has_blocks(m.get("content")) {
            return Err(invalid(format!("messages.{i}: text content blocks must be non-empty")));
        }
        prompt += prompt_tokens(&text);
        if role == Role::User {
            last_user_text.clone_from(&text);
        }
        messages.push(Message { role, content: text });
    }
    Ok(Request {
        model: model.to_string(),
        messages,
        last_user_text,
        prompt_tokens: prompt,
        stream: req.get("stream").and_then(Value::as_bool).unwrap_or(false),
        max_tokens: usize::try_from(max_tokens).unwrap_or(usize::MAX),
    })
}

/// `content`/`system` is a string, or an array of blocks of which the `text` ones count.
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

/// Non-text blocks (tool results) make an otherwise empty message valid.
fn has_blocks(content: Option<&Value>) -> bool {
    content.and_then(Value::as_array).is_some_and(|b| b.iter().any(|b| b.get("text").is_none()))
}

async fn messages(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    let fault = shared.fault();
    if let Some(Fault::Status(status)) = fault {
        return fault_response(status);
    }
    let req = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    shared.remember(&req.messages);
    let reply = reply_for(&req.last_user_text);
    let mut toks = tokens(&reply);
    let stop_reason = if req.max_tokens < toks.len() {
        toks.truncate(req.max_tokens);
        "max_tokens"
    } else {
        "end_turn"
    };
    let id = format!("msg_sim{}", uuid::Uuid::new_v4().simple());
    if !req.stream {
        return Json(json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": [{"type": "text", "text": toks.concat()}],
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": {"input_tokens": req.prompt_tokens, "output_tokens": toks.len(), "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }))
        .into_response();
    }
    let plan = Plan {
        id,
        model: req.model,
        tokens: toks.into_iter().map(str::to_string).collect(),
        stop_reason,
        input_tokens: req.prompt_tokens,
        drop_after: match fault {
            Some(Fault::DropAfterTokens(n)) => Some(n),
            _ => None,
        },
        first_token_delay: shared.first_token_delay,
        tokens_per_sec: shared.tokens_per_sec,
    };
    crate::sim::paced::response(plan.schedule(), shared.stop.clone(), shared.open_streams.clone())
}

async fn models(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(20).clamp(1, 1000);
    let data: Vec<Value> = MODELS
        .iter()
        .take(limit)
        .map(
            |(id, name)| json!({"type": "model", "id": id, "display_name": name, "created_at": "2025-10-01T00:00:00Z"}),
        )
        .collect();
    let first = data.first().map(|m| m["id"].clone());
    let last = data.last().map(|m| m["id"].clone());
    Json(json!({"data": data, "has_more": limit < MODELS.len(), "first_id": first, "last_id": last})).into_response()
}
