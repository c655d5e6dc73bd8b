//! Routes, `api-key` auth and Azure's error bodies; the completion bodies are the OpenAI sim's
//! in their Azure shape.

use super::{Fault, Shared};
use crate::sim::openai::handlers::{chat_answer, parse};
use crate::sim::openai::responses;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Models listed by the key check; any deployment name is accepted for completions.
const MODELS: [&str; 3] = ["gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14", "gpt-4o-2024-11-20"];
/// The hint sent with a scripted 429, as Azure sends it (seconds and milliseconds).
pub(super) const RETRY_AFTER_S: &str = "2";
/// Azure's answer to a wrong or missing key.
pub(super) const BAD_KEY: &str = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.";

type Params = Query<HashMap<String, String>>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/openai/deployments/{deployment}/chat/completions", post(classic_chat))
        .route("/openai/v1/chat/completions", post(v1_chat))
        .route("/openai/v1/responses", post(v1_responses))
        .route("/openai/models", get(classic_models))
        .route("/openai/v1/models", get(models))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "404", "Resource not found") })
        .with_state(shared)
}

/// A refusal in Azure's shape `{"error":{"code","message"}}`.
struct AzError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl IntoResponse for AzError {
    fn into_response(self) -> Response {
        let mut resp = error(self.status, self.code, self.message);
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut().insert("retry-after", HeaderValue::from_static(RETRY_AFTER_S));
        }
        resp
    }
}

/// Azure's error body, with the `apim-request-id` every answer carries.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut resp = (status, Json(json!({"error": {"code": code, "message": message}}))).into_response();
    stamp(&mut resp);
    resp
}

fn stamp(resp: &mut Response) {
    if let Ok(id) = HeaderValue::try_from(uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("apim-request-id", id);
    }
}

/// Checks `api-key`; the key is never echoed back.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), AzError> {
    let key = headers.get("api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty());
    if let Some(key) = key {
        shared.saw_key(key);
        if shared.keys.contains(key) {
            return Ok(());
        }
    }
    Err(AzError { status: StatusCode::UNAUTHORIZED, code: "401", message: BAD_KEY })
}

/// The dated api-version query every classic route requires.
fn api_version(q: &Params) -> Result<(), AzError> {
    match q.get("api-version").filter(|v| !v.is_empty()) {
        Some(_) => Ok(()),
        None => Err(AzError { status: StatusCode::NOT_FOUND, code: "404", message: "Resource not found" }),
    }
}

/// Counts the request, checks the key and applies a scripted status.
fn admit(shared: &Shared, headers: &HeaderMap) -> Result<Option<Fault>, AzError> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    authorize(shared, headers)?;
    let fault = shared.fault();
    if let Some(Fault::Status(status)) = fault {
        return Err(fault_response(status));
    }
    Ok(fault)
}

fn fault_response(status: u16) -> AzError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match status.as_u16() {
        401 => ("401", BAD_KEY),
        404 => ("DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."),
        429 => ("429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 2 seconds."),
        500.. => ("InternalServerError", "The server had an error while processing your request. Sorry about that!"),
        _ => ("BadRequest", "Your request was rejected."),
    };
    AzError { status, code, message }
}

async fn classic_chat(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    q: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = api_version(&q) {
        return e.into_response();
    }
    chat(&shared, &headers, &body, Some(&deployment))
}

async fn v1_chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    chat(&shared, &headers, &body, None)
}

fn chat(shared: &Shared, headers: &HeaderMap, body: &[u8], deployment: Option<&str>) -> Response {
    let fault = match admit(shared, headers) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let mut resp = match parse(body, deployment) {
        Ok(req) => chat_answer(shared, req, fault, true),
        Err(e) => e.into_response(),
    };
    stamp(&mut resp);
    resp
}

async fn v1_responses(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = match admit(&shared, &headers) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let mut resp = match responses::parse(&body) {
        Ok(req) => responses::answer(&shared, &req, None, fault),
        Err(e) => e.into_response(),
    };
    stamp(&mut resp);
    resp
}

async fn classic_models(State(shared): State<Arc<Shared>>, q: Params, headers: HeaderMap) -> Response {
    if let Err(e) = api_version(&q) {
        return e.into_response();
    }
    models(State(shared), headers).await
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| {
            json!({
                "id": m, "object": "model", "status": "succeeded", "created_at": 1_721_172_741,
                "capabilities": {"chat_completion": true, "completion": false, "embeddings": false,
                                 "fine_tune": false, "inference": true},
                "lifecycle_status": "generally-available",
                "deprecation": {"inference": 1_777_593_600}
            })
        })
        .collect();
    let mut resp = Json(json!({"data": data, "object": "list"})).into_response();
    stamp(&mut resp);
    resp
}
