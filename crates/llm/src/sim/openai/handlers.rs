//! Routes, auth and request validation, answering the way api.openai.com does.

use super::responses::{self, Script};
use super::stream::{self, Plan};
use super::{Fault, Shared};
use crate::sim::replies::{prompt_tokens, reply_for, tokens};
use crate::{Message, Role};
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Models listed by `GET /v1/models`; any model name is accepted for completions.
const MODELS: [&str; 3] = ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o"];
/// The hint sent with a scripted 429.
pub(super) const RETRY_AFTER_MS: &str = "1200";

pub(super) fn router(shared: Arc<Shared>, script: Script) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/responses", post(create_response))
        .route("/v1/models", get(models))
        // The key checks of family members this simulator stands in for.
        .route("/v1/key", get(openrouter_key))
        .route("/v1/api-key", get(xai_api_key))
        .fallback(not_found)
        .layer(Extension(script))
        .with_state(shared)
}

/// An answer in OpenAI's error shape `{"error":{message,type,param,code}}`.
pub(in crate::sim) struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl ApiError {
    pub(in crate::sim) fn new(
        status: StatusCode,
        message: impl Into<String>,
        kind: &'static str,
        code: Option<&'static str>,
    ) -> Self {
        Self { status, message: message.into(), kind, param: None, code }
    }

    pub(in crate::sim) fn invalid(
        message: impl Into<String>,
        param: Option<String>,
        code: Option<&'static str>,
    ) -> Self {
        Self { param, ..Self::new(StatusCode::BAD_REQUEST, message, "invalid_request_error", code) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}});
        (self.status, Json(body)).into_response()
    }
}

/// Checks `Authorization: Bearer <key>`; the key is never echoed back.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
        ));
    };
    shared.saw_key(key);
    if shared.keys.contains(key) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ))
    }
}

pub(in crate::sim) fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (message, kind, code) = match status.as_u16() {
        401 => ("Incorrect API key provided.", "invalid_request_error", Some("invalid_api_key")),
        403 => ("You are not allowed to sample from this model", "invalid_request_error", None),
        404 => (
            "The model does not exist or you do not have access to it.",
            "invalid_request_error",
            Some("model_not_found"),
        ),
        429 => ("Rate limit reached for requests. Please try again later.", "requests", Some("rate_limit_exceeded")),
        500.. => ("The server had an error while processing your request. Sorry about that!", "server_error", None),
        _ => ("Your request was rejected.", "invalid_request_error", None),
    };
    let mut resp = ApiError::new(status, message, kind, code).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert("retry-after-ms", HeaderValue::from_static(RETRY_AFTER_MS));
    }
    resp
}

/// What the sim needs from a chat request.
pub(in crate::sim) struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub last_user_text: String,
    pub prompt_tokens: u64,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<usize>,
}

/// Validates a chat body. `deployment` is Azure's classic path segment: it names the model, and
/// the body's `model` is then optional and ignored.
pub(in crate::sim) fn parse(body: &[u8], deployment: Option<&str>) -> Result<ChatRequest, ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            None,
            None,
        ));
    };
    let Some(model) = deployment.or(req.get("model").and_then(Value::as_str)).filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid("you must provide a model parameter", None, None));
    };
    let Some(raw) = req.get("messages").and_then(Value::as_array) else {
        return Err(ApiError::invalid(
            "Missing required parameter: 'messages'.",
            Some("messages".into()),
            Some("missing_required_parameter"),
        ));
    };
    if raw.is_empty() {
        return Err(ApiError::invalid("[] is too short - 'messages'", Some("messages".into()), Some("empty_array")));
    }
    let mut messages = Vec::with_capacity(raw.len());
    let mut prompt = 0;
    let mut last_user_text = String::new();
    for (i, m) in raw.iter().enumerate() {
        let Some(role) = m.get("role").and_then(Value::as_str) else {
            return Err(ApiError::invalid(
                format!("Missing required parameter: 'messages[{i}].role'."),
                Some(format!("messages[{i}].role")),
                Some("missing_required_parameter"),
            ));
        };
        let text = content_text(m.get("content"));
        prompt += prompt_tokens(&text);
        let role = match role {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" | "function" => continue,
            other => {
                return Err(ApiError::invalid(
                    format!("Invalid value: '{other}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."),
                    Some(format!("messages[{i}].role")),
                    Some("invalid_value"),
                ))
            }
        };
        if role == Role::User {
            last_user_text.clone_from(&text);
        }
        messages.push(Message { role, content: text });
    }
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| req.get(*k).and_then(Value::as_u64))
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    Ok(ChatRequest {
        model: model.to_string(),
        messages,
        last_user_text,
        prompt_tokens: prompt,
        stream: req.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: req
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        max_tokens,
    })
}

/// `content` is a string, or an array of parts of which the `text` ones count.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    let fault = shared.fault();
    if let Some(Fault::Status(status)) = fault {
        return fault_response(status);
    }
    let req = match parse(&body, None) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    chat_answer(&shared, req, fault, false)
}

/// The answer to an accepted chat request, streamed or whole; `azure` gives Azure's stream
/// shape (prompt-filter chunk, filter verdicts) and its model-version naming.
pub(in crate::sim) fn chat_answer(shared: &Shared, req: ChatRequest, fault: Option<Fault>, azure: bool) -> Response {
    shared.remember(&req.messages);
    let reply = reply_for(&req.last_user_text);
    let mut toks = tokens(&reply);
    let finish_reason = match req.max_tokens {
        Some(max) if max < toks.len() => {
            toks.truncate(max);
            "length"
        }
        _ => "stop",
    };
    let model = if azure { azure_model_version(&req.model) } else { req.model.clone() };
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let id = format!("chatcmpl-sim{}", uuid::Uuid::new_v4().simple());
    let usage = json!({
        "prompt_tokens": req.prompt_tokens,
        "completion_tokens": toks.len(),
        "total_tokens": req.prompt_tokens + toks.len() as u64,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    });
    if !req.stream {
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": toks.concat(), "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": finish_reason
            }],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_sim"
        });
        return Json(body).into_response();
    }
    let x_groq = shared.x_groq_usage.load(Ordering::Relaxed);
    let drop_after = match fault {
        Some(Fault::DropAfterTokens(n)) => Some(n),
        _ => None,
    };
    stream::response(Plan {
        id,
        created,
        model,
        tokens: toks.into_iter().map(str::to_string).collect(),
        finish_reason,
        // Groq reports `x_groq.usage` whether or not `include_usage` was asked for.
        usage: (req.include_usage || x_groq).then_some(usage),
        x_groq,
        drop_after,
        azure,
        first_token_delay: shared.first_token_delay,
        tokens_per_sec: shared.tokens_per_sec,
        stop: shared.stop.clone(),
        open: shared.open_streams.clone(),
    })
}

/// The model version Azure reports for a deployment of a known model (it never echoes the
/// deployment name).
fn azure_model_version(deployment: &str) -> String {
    match deployment {
        "gpt-4o-mini" => "gpt-4o-mini-2024-07-18".into(),
        "gpt-4.1-mini" => "gpt-4.1-mini-2025-04-14".into(),
        "gpt-4o" => "gpt-4o-2024-11-20".into(),
        other => other.into(),
    }
}

async fn create_response(
    State(shared): State<Arc<Shared>>,
    Extension(script): Extension<Script>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    let fault = shared.fault();
    if let Some(Fault::Status(status)) = fault {
        return fault_response(status);
    }
    let req = match responses::parse(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let call = script.lock().ok().and_then(|s| s.clone());
    responses::answer(&shared, &req, call, fault)
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 1_721_172_741, "owned_by": "system"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// OpenRouter's `GET /api/v1/key`: the key's own limits and usage.
async fn openrouter_key(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    Json(json!({"data": {"label": "sim", "usage": 0, "limit": null, "is_free_tier": false}})).into_response()
}

/// xAI's `GET /v1/api-key`: the key's status.
async fn xai_api_key(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    Json(json!({"name": "sim", "api_key_blocked": false, "api_key_disabled": false, "team_blocked": false}))
        .into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!("Invalid URL ({method} {})", uri.path());
    ApiError::new(StatusCode::NOT_FOUND, message, "invalid_request_error", None).into_response()
}
