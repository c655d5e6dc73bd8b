//! HTTP surface: health, metrics, Twilio webhook + media stream, client websocket, the calls
//! API and the admin API.

use crate::api_org;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use session::transport::{
    ClientCodec, PlivoCodec, TelnyxCodec, TwilioCodec, VonageCodec, WireCodec, MAX_MESSAGE_BYTES,
};
use session::{SessionDeps, SessionEvent};
use std::convert::Infallible;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub deps: Arc<SessionDeps>,
    pub prometheus: PrometheusHandle,
    /// Guards `/api`; when unset the calls API is open and the admin API is off.
    pub admin_token: Option<SecretString>,
    pub sandbox: bool,
    pub public_url: Option<String>,
}

/// An API error: a status, a stable code and a message that never carries a secret.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/twilio/voice", post(twilio_voice))
        .route("/twilio/stream", get(twilio_stream))
        .route("/v1/client", get(client_stream))
        .route("/telnyx/stream", get(telnyx_stream))
        .route("/plivo/stream", get(plivo_stream))
        .route("/vonage/stream", get(vonage_stream))
        .route("/api/calls/{call_id}", get(call))
        .route("/api/calls/{call_id}/events", get(call_events))
        .route("/api/sessions/{session_id}", get(session_by_id))
        .route("/api/admin/managed-keys/{provider}", put(put_managed_key))
        .route("/api/admin/orgs", post(api_org::create_org))
        .route("/api/admin/orgs/{org_id}/wallet", post(api_org::wallet_topup))
        .route("/api/admin/plans", put(api_org::put_plan))
        .route("/api/admin/rates/managed", put(api_org::set_managed))
        .route("/api/admin/rates", put(api_org::put_rate))
        .route("/api/credentials", put(api_org::put_credential).get(api_org::list_credentials))
        .route("/api/credentials/{id}", axum::routing::delete(api_org::delete_credential))
        .route("/api/credentials/check", post(api_org::check_credentials))
        .route("/api/byok", put(api_org::put_byok))
        .route("/api/models/access", get(api_org::model_access))
        .route("/api/models/catalog", get(api_org::model_catalog))
        .route("/api/rates/models", get(api_org::rate_models))
        .route("/api/agents", post(api_org::create_agent))
        .route("/api/agents/{id}", get(api_org::get_agent))
        .route("/api/balance", get(api_org::balance))
        .route("/api/usage", get(api_org::usage))
        .route("/api/v1/chat/completions", post(crate::openai_api::chat_completions))
        .with_state(state)
}

async fn healthz(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "sandbox": s.sandbox}))
}

/// The API described as OpenAPI 3.1 (docs/openapi.json, checked against the router by a test).
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../docs/openapi.json"))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.prometheus.render())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Twilio's voice webhook: answer with `<Connect><Stream>` to this server's media endpoint.
async fn twilio_voice(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let base = match &s.public_url {
        Some(u) => u.trim_end_matches('/').replacen("http", "ws", 1),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            format!("wss://{host}")
        }
    };
    let url = xml_escape(&format!("{base}/twilio/stream"));
    let twiml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{url}"><Parameter name="agent" value="default"/></Stream></Connect></Response>"#
    );
    ([(header::CONTENT_TYPE, "text/xml")], twiml).into_response()
}

/// Upgrade a gateway's websocket and run one session over it with that gateway's codec.
fn gateway_session(s: AppState, ws: WebSocketUpgrade, codec: fn() -> Box<dyn WireCodec>) -> Response {
    let deps = s.deps.clone();
    // Small buffers: tungstenite's default 128 KiB read buffer is zero-filled on every read and
    // held per connection, which dominated both CPU and memory per call. Writes collect up to
    // 8 KiB until the writer flushes, so a burst of frames is one socket write.
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| session::run_session(socket, codec(), deps))
}

async fn twilio_stream(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    gateway_session(s, ws, || Box::new(TwilioCodec::new()))
}

async fn client_stream(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    gateway_session(s, ws, || Box::new(ClientCodec::new()))
}

async fn telnyx_stream(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    gateway_session(s, ws, || Box::new(TelnyxCodec::new()))
}

async fn plivo_stream(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    gateway_session(s, ws, || Box::new(PlivoCodec::new()))
}

async fn vonage_stream(State(s): State<AppState>, ws: WebSocketUpgrade) -> Response {
    gateway_session(s, ws, || Box::new(VonageCodec::new()))
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn check_api(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match &s.admin_token {
        None => Ok(()),
        Some(t) if bearer(headers).is_some_and(|b| same(b.as_bytes(), t.expose_secret().as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token")),
    }
}

async fn session_json(s: &AppState, row: billing::store::SessionRow) -> Result<Json<serde_json::Value>, ApiError> {
    let usage = s
        .deps
        .store
        .usage_for_session(&row.session_id)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), "the store is unavailable"))?;
    let plan: serde_json::Value = serde_json::from_str(&row.plan_json).unwrap_or_default();
    Ok(Json(serde_json::json!({
        "session_id": row.session_id, "call_sid": row.call_sid, "gateway": row.gateway,
        "status": row.status, "started_at_ms": row.started_at_ms, "ended_at_ms": row.ended_at_ms,
        "end_reason": row.end_reason, "plan": plan, "usage": usage,
    })))
}

async fn call(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_api(&s, &headers)?;
    let row = s
        .deps
        .store
        .session_by_call_sid(&call_id)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), "the store is unavailable"))?;
    let row = row.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such call"))?;
    session_json(&s, row).await
}

async fn session_by_id(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_api(&s, &headers)?;
    let row = s
        .deps
        .store
        .session(&id)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), "the store is unavailable"))?;
    let row = row.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such session"))?;
    session_json(&s, row).await
}

/// Live events of a call as server-sent events; may be opened before the call starts.
/// The stream ends after the call's `end` event.
async fn call_events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    check_api(&s, &headers)?;
    let rx = s.deps.hub.subscribe(&call_id);
    let stream = futures::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let end = matches!(ev, SessionEvent::End { .. });
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    return Some((Ok::<_, Infallible>(Event::default().data(data)), (rx, end)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "event watcher too slow; events skipped");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyBody {
    api_key: String,
}

/// Admin endpoints need the admin token; without one configured they do not exist.
pub fn check_admin(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &s.admin_token else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "set SWITCHBOARD_ADMIN_TOKEN to enable the admin API",
        ));
    };
    if !bearer(headers).is_some_and(|b| same(b.as_bytes(), token.expose_secret().as_bytes())) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token"));
    }
    Ok(())
}

/// Rotate a managed provider key. Sessions already running keep the key they started with.
async fn put_managed_key(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    body: Result<Json<KeyBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(token) = &s.admin_token else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "set SWITCHBOARD_ADMIN_TOKEN to enable the admin API",
        ));
    };
    if !bearer(&headers).is_some_and(|b| same(b.as_bytes(), token.expose_secret().as_bytes())) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token"));
    }
    let Json(body) = body
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", r#"body must be JSON {"apiKey": "…"}"#))?;
    let known = crate::server::provider_names().contains(&provider.as_str());
    if !known {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_provider",
            format!("no managed provider {provider:?}"),
        ));
    }
    let key = body.api_key.trim().to_string();
    if key.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "apiKey is empty"));
    }
    let key = SecretString::from(key);
    let last4 = billing::keys::last4(&key);
    s.deps.resolver.keys().set(&provider, key);
    tracing::info!(%provider, %last4, "managed key replaced; new sessions use it");
    Ok(Json(serde_json::json!({"provider": provider, "last4": last4})))
}

#[cfg(test)]
mod tests {
    /// Every route the router serves is in the OpenAPI document, and nothing else is.
    #[test]
    fn openapi_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../docs/openapi.json")).unwrap();
        let mut documented: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
        let src = include_str!("api.rs");
        let src = &src[src.find("pub fn router(").unwrap()..];
        let src = &src[..src.find(".with_state(").unwrap()];
        let mut routed: Vec<String> = src
            .split(".route(")
            .skip(1)
            .filter_map(|s| s.trim_start().strip_prefix('"'))
            .filter_map(|s| s.split('"').next())
            .map(str::to_string)
            .collect();
        documented.sort();
        routed.sort();
        routed.dedup();
        assert_eq!(documented, routed);
    }
}
