//! Routes, auth, request validation and the paced stream, answering the way
//! generativelanguage.googleapis.com does.

use super::{Fault, Shared};
use crate::sim::paced::{self, sse, Frame, Pacer};
use crate::sim::replies::{prompt_tokens, reply_for, tokens};
use crate::{Message, Role};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const MODELS: [&str; 3] = ["gemini-2.5-flash", "gemini-2.0-flash", "gemini-2.5-pro"];
/// `RetryInfo.retryDelay` sent with a scripted 429.
pub(super) const RETRY_DELAY: &str = "2s";

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1beta/models/{action}", post(generate))
        .route("/v1beta/models", get(models))
        .fallback(|| async {
            error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested URL was not found on this server.", vec![])
        })
        .with_state(shared)
}

/// A refusal, rendered by [`error`].
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: &'static str,
    details: Vec<Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.kind, self.message, self.details)
    }
}

/// `{"error":{"code","message","status","details"}}`.
fn error(status: StatusCode, kind: &str, message: &str, details: Vec<Value>) -> Response {
    let mut err = json!({"code": status.as_u16(), "message": message, "status": kind});
    if !details.is_empty() {
        err["details"] = Value::Array(details);
    }
    (status, Json(json!({ "error": err }))).into_response()
}

fn key_of<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.get("key").map(String::as_str))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Checks the key; the key is never echoed back.
fn authorize(shared: &Shared, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<(), ApiError> {
    let Some(key) = key_of(headers, query) else {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            kind: "PERMISSION_DENIED",
            message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            details: vec![],
        });
    };
    shared.saw_key(key);
    if shared.keys.contains(key) {
        return Ok(());
    }
    let message = "API key not valid. Please pass a valid API key.";
    Err(ApiError {
        status: StatusCode::BAD_REQUEST,
        kind: "INVALID_ARGUMENT",
        message,
        details: vec![
            json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}),
            json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}),
        ],
    })
}

fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, message) = match status.as_u16() {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
        403 => ("PERMISSION_DENIED", "The caller does not have permission"),
        404 => ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
        429 => ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
        503 => ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        _ => ("INTERNAL", "An internal error has occurred."),
    };
    let details = if status == StatusCode::TOO_MANY_REQUESTS {
        vec![json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": RETRY_DELAY})]
    } else {
        vec![]
    };
    error(status, kind, message, details)
}

struct Request {
    messages: Vec<Message>,
    last_user_text: String,
    prompt_tokens: u64,
    max_tokens: Option<usize>,
}

fn invalid(message: &'static str) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, kind: "INVALID_ARGUMENT", message, details: vec![] }
}

fn parts_text(content: &Value) -> String {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(|parts| parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn parse(body: &[u8]) -> Result<Request, ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("Invalid JSON payload received."));
    };
    let Some(contents) = req.get("contents").and_then(Value::as_array) else {
        return Err(invalid("* GenerateContentRequest.contents: contents is not specified\n"));
    };
    if contents.is_empty() {
        return Err(invalid("* GenerateContentRequest.contents: contents is not specified\n"));
    }
    let mut messages = Vec::with_capacity(contents.len() + 1);
    let mut prompt = 0;
    if let Some(system) = req.get("systemInstruction").or(req.get("system_instruction")) {
        let text = parts_text(system);
        prompt += prompt_tokens(&text);
        messages.push(Message { role: Role::System, content: text });
    }
    let mut last_user_text = String::new();
    for content in contents {
        let role = match content.get("role").and_then(Value::as_str) {
            Some("user") | None => Role::User,
            Some("model") => Role::Assistant,
            Some(_) => return Err(invalid("Please use a valid role: user, model.")),
        };
        let text = parts_text(content);
        if content.get("parts").and_then(Value::as_array).is_none_or(Vec::is_empty) {
            return Err(invalid("* GenerateContentRequest.contents.parts: contents.parts must not be empty.\n"));
        }
        prompt += prompt_tokens(&text);
        if role == Role::User {
            last_user_text.clone_from(&text);
        }
        messages.push(Message { role, content: text });
    }
    let max_tokens = req
        .get("generationConfig")
        .and_then(|c| c.get("maxOutputTokens"))
        .and_then(Value::as_u64)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    Ok(Request { messages, last_user_text, prompt_tokens: prompt, max_tokens })
}

async fn generate(
    State(shared): State<Arc<Shared>>,
    Path(action): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let Some((model, method)) = action.split_once(':') else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested URL was not found on this server.", vec![]);
    };
    if let Err(e) = authorize(&shared, &headers, &query) {
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
    let finish = match req.max_tokens {
        Some(max) if max < toks.len() => {
            toks.truncate(max);
            "MAX_TOKENS"
        }
        _ => "STOP",
    };
    let answer = Answer {
        model: model.to_string(),
        id: uuid::Uuid::new_v4().simple().to_string(),
        prompt_tokens: req.prompt_tokens,
    };
    match method {
        "generateContent" => Json(answer.chunk(&toks.concat(), Some(finish), toks.len())).into_response(),
        "streamGenerateContent" if query.get("alt").map(String::as_str) == Some("sse") => {
            let drop_after = match fault {
                Some(Fault::DropAfterTokens(n)) => Some(n),
                _ => None,
            };
            let mut pacer = Pacer::new(shared.first_token_delay, shared.tokens_per_sec);
            let frames = answer.schedule(&toks, finish, drop_after, &mut pacer);
            paced::response(frames, shared.stop.clone(), shared.open_streams.clone())
        }
        "streamGenerateContent" => {
            let n = toks.len();
            let chunks: Vec<Value> =
                toks.iter().enumerate().map(|(i, t)| answer.chunk(t, (i + 1 == n).then_some(finish), i + 1)).collect();
            Json(Value::Array(chunks)).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested URL was not found on this server.", vec![]),
    }
}

struct Answer {
    model: String,
    id: String,
    prompt_tokens: u64,
}

impl Answer {
    /// One `GenerateContentResponse`; usage is cumulative, as Gemini reports it.
    fn chunk(&self, text: &str, finish: Option<&str>, output_so_far: usize) -> Value {
        let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
        if let Some(reason) = finish {
            candidate["finishReason"] = json!(reason);
        }
        json!({
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": self.prompt_tokens,
                "candidatesTokenCount": output_so_far,
                "totalTokenCount": self.prompt_tokens + output_so_far as u64,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
            },
            "modelVersion": self.model,
            "responseId": self.id
        })
    }

    /// One chunk per token, the last carrying `finishReason`; the body then just ends.
    fn schedule(
        &self,
        toks: &[&str],
        finish: &str,
        drop_after: Option<usize>,
        pacer: &mut Pacer,
    ) -> Vec<(Duration, Frame)> {
        let mut frames = Vec::with_capacity(toks.len() + 1);
        for (i, token) in toks.iter().enumerate() {
            let at = pacer.next_token();
            if drop_after == Some(i) {
                frames.push((at, Frame::Cut));
                return frames;
            }
            let last = i + 1 == toks.len() && drop_after.is_none();
            let chunk = self.chunk(token, last.then_some(finish), i + 1);
            frames.push((at, Frame::Data(sse(None, &chunk))));
        }
        let at = pacer.last();
        if drop_after.is_some() {
            frames.push((at, Frame::Cut));
        } else if toks.is_empty() {
            frames.push((at, Frame::Data(sse(None, &self.chunk("", Some(finish), 0)))));
        }
        frames
    }
}

async fn models(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorize(&shared, &headers, &query) {
        return e.into_response();
    }
    let size = query.get("pageSize").and_then(|s| s.parse::<usize>().ok()).unwrap_or(50).max(1);
    let models: Vec<Value> = MODELS
        .iter()
        .take(size)
        .map(|m| json!({"name": format!("models/{m}"), "version": "001", "displayName": m, "supportedGenerationMethods": ["generateContent", "countTokens"]}))
        .collect();
    let mut body = json!({ "models": models });
    if size < MODELS.len() {
        body["nextPageToken"] = json!("sim-next-page");
    }
    Json(body).into_response()
}
