//! Routes, SigV4 (or API-key) auth, Converse validation and the event-stream answer.

use super::{Fault, Shared};
use crate::sim::paced::{self, Frame, Pacer};
use crate::sim::replies::{prompt_tokens, reply_for, tokens};
use crate::{Message, Role};
use aws::eventstream::Message as EventMessage;
use aws::verify::{AuthError, IncomingRequest, ERROR_TYPE_HEADER};
use aws::Credentials;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The service every Bedrock request is signed for.
const SERVICE: &str = "bedrock";
/// Models listed by the key check; any model id is accepted for Converse.
const MODELS: [(&str, &str, &str); 2] = [
    ("amazon.nova-lite-v1:0", "Nova Lite", "Amazon"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", "Anthropic"),
];

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/model/{model}/converse-stream", post(converse_stream))
        .route("/foundation-models", get(foundation_models))
        .fallback(|method: Method, uri: Uri| async move {
            let message =
                format!("Unable to determine service/operation name to be authorized for {method} {}", uri.path());
            error(StatusCode::NOT_FOUND, "UnknownOperationException", &message)
        })
        .with_state(shared)
}

/// A restJson1 refusal: status, `x-amzn-ErrorType`, body `{"message":…}`, a request id.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], json!({ "message": message }).to_string())
        .into_response();
    let coral = format!("{code}:http://internal.amazon.com/coral/com.amazon.coral.service/");
    if let Ok(v) = HeaderValue::try_from(coral) {
        resp.headers_mut().insert(ERROR_TYPE_HEADER, v);
    }
    stamp(&mut resp);
    resp
}

fn stamp(resp: &mut Response) {
    if let Ok(v) = HeaderValue::try_from(uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
}

fn refusal(e: &AuthError) -> Response {
    error(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN), e.code(), &e.to_string())
}

/// A refused request body (Converse validation), rendered by [`error`].
struct Refused {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.status, self.code, &self.message)
    }
}

/// The accepted key string whose access key id is `akid`, with its credentials.
fn lookup(shared: &Shared, akid: &str) -> Option<(String, Credentials)> {
    let key = shared.keys.find(|k| k.split_once(':').is_some_and(|(id, _)| id == akid))?;
    let creds = Credentials::parse(&key).ok()?;
    Some((key, creds))
}

/// Verifies the request (SigV4 or a Bearer API key); records the key it proved (or the access
/// key id / token it named).
fn authorize(shared: &Shared, method: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), AuthError> {
    let pairs: Vec<(&str, &str)> =
        headers.iter().filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))).collect();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(token) = bearer {
        shared.saw_key(token);
        if !token.contains(':') && shared.keys.contains(token) {
            return Ok(());
        }
        return Err(AuthError::UnrecognizedClient);
    }
    let payload = aws::sha256_hex(body);
    let req = IncomingRequest {
        method,
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        payload_sha256: &payload,
    };
    match aws::verify(&req, SERVICE, SystemTime::now(), |akid| lookup(shared, akid).map(|(_, c)| c)) {
        Ok(v) => {
            let key = lookup(shared, v.credentials.access_key_id()).map(|(k, _)| k);
            shared.saw_key(&key.unwrap_or_else(|| v.credentials.access_key_id().to_string()));
            Ok(())
        }
        Err(e) => {
            if let Some(akid) = named_key_id(headers) {
                shared.saw_key(&akid);
            }
            Err(e)
        }
    }
}

/// The access key id a refused `Authorization` header names, for inspection.
fn named_key_id(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.to_string())
}

fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match status.as_u16() {
        403 => ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
        404 => {
            ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier.")
        }
        429 => ("ThrottlingException", "Too many requests, please wait before trying again."),
        503 => ("ServiceUnavailableException", "Bedrock is unable to process your request."),
        500.. => ("InternalServerException", "The server encountered an internal error."),
        _ => ("ValidationException", "The request was rejected."),
    };
    error(status, code, message)
}

/// What the sim needs from a Converse request.
struct Converse {
    messages: Vec<Message>,
    last_user_text: String,
    prompt_tokens: u64,
    max_tokens: Option<usize>,
}

fn invalid(message: impl Into<String>) -> Refused {
    Refused { status: StatusCode::BAD_REQUEST, code: "ValidationException", message: message.into() }
}

fn text_of(blocks: Option<&Value>) -> String {
    let texts: Vec<&str> = blocks
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    texts.join("\n")
}

fn parse(body: &[u8]) -> Result<Converse, Refused> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(Refused {
            status: StatusCode::BAD_REQUEST,
            code: "SerializationException",
            message: "Unable to parse the request body.".into(),
        });
    };
    let mut messages = Vec::new();
    for block in req.get("system").and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            messages.push(Message { role: Role::System, content: text.to_string() });
        }
    }
    let Some(turns) = req.get("messages").and_then(Value::as_array).filter(|t| !t.is_empty()) else {
        return Err(invalid("A conversation must start with a user message. Try again with a conversation that starts with a user message."));
    };
    let mut previous = None;
    for turn in turns {
        let role = match turn.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            other => return Err(invalid(format!("1 validation error detected: Value {other:?} at 'messages.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]"))),
        };
        if previous.is_none() && role != Role::User {
            return Err(invalid("A conversation must start with a user message. Try again with a conversation that starts with a user message."));
        }
        if previous == Some(role) {
            return Err(invalid("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."));
        }
        previous = Some(role);
        let text = text_of(turn.get("content"));
        if text.trim().is_empty() {
            return Err(invalid(
                "The text field in the ContentBlock object is blank. Add text to the text field, and try again.",
            ));
        }
        messages.push(Message { role, content: text });
    }
    let last_user_text =
        messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.clone()).unwrap_or_default();
    let max_tokens = req
        .get("inferenceConfig")
        .and_then(|c| c.get("maxTokens"))
        .and_then(Value::as_u64)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    Ok(Converse {
        prompt_tokens: messages.iter().map(|m| prompt_tokens(&m.content)).sum(),
        messages,
        last_user_text,
        max_tokens,
    })
}

fn event(kind: &'static str, payload: Value) -> Frame {
    match EventMessage::event(kind, "application/json", payload.to_string().into_bytes()).encode() {
        Ok(bytes) => Frame::Data(Bytes::from(bytes)),
        Err(_) => Frame::Cut,
    }
}

async fn converse_stream(
    State(shared): State<Arc<Shared>>,
    Path(_model): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = authorize(&shared, "POST", &uri, &headers, &body) {
        return refusal(&e);
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
    let stop_reason = match req.max_tokens {
        Some(max) if max < toks.len() => {
            toks.truncate(max);
            "max_tokens"
        }
        _ => "end_turn",
    };
    let drop_after = match fault {
        Some(Fault::DropAfterTokens(n)) => Some(n),
        _ => None,
    };
    let mut pacer = Pacer::new(shared.first_token_delay, shared.tokens_per_sec);
    let mut frames = Vec::with_capacity(toks.len() + 4);
    frames.push((Duration::ZERO, event("messageStart", json!({"role": "assistant"}))));
    for (i, tok) in toks.iter().enumerate() {
        let at = pacer.next_token();
        if drop_after == Some(i) {
            frames.push((at, Frame::Cut));
            break;
        }
        frames.push((at, event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": tok}}))));
    }
    let at = pacer.last();
    if drop_after.is_some() {
        frames.push((at, Frame::Cut));
    } else {
        let latency = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        let usage = json!({
            "inputTokens": req.prompt_tokens, "outputTokens": toks.len(),
            "totalTokens": req.prompt_tokens + toks.len() as u64
        });
        frames.push((at, event("contentBlockStop", json!({"contentBlockIndex": 0}))));
        frames.push((at, event("messageStop", json!({"stopReason": stop_reason}))));
        frames.push((at, event("metadata", json!({"usage": usage, "metrics": {"latencyMs": latency}}))));
    }
    let mut resp = paced::response(frames, shared.stop.clone(), shared.open_streams.clone());
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.amazon.eventstream"));
    h.remove(header::CACHE_CONTROL);
    stamp(&mut resp);
    resp
}

async fn foundation_models(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&shared, "GET", &uri, &headers, b"") {
        return refusal(&e);
    }
    let summaries: Vec<Value> = MODELS
        .iter()
        .map(|(id, name, provider)| {
            json!({
                "modelArn": format!("arn:aws:bedrock:us-east-1::foundation-model/{id}"),
                "modelId": id, "modelName": name, "providerName": provider,
                "inputModalities": ["TEXT"], "outputModalities": ["TEXT"],
                "responseStreamingSupported": true, "customizationsSupported": [],
                "inferenceTypesSupported": ["ON_DEMAND"], "modelLifecycle": {"status": "ACTIVE"}
            })
        })
        .collect();
    let mut resp = axum::Json(json!({ "modelSummaries": summaries })).into_response();
    stamp(&mut resp);
    resp
}
