//! HTTP surface: the router, health, metrics, the media routes (each gateway's websocket) and
//! the admin API. Carrier answer webhooks are in `answer`, the calls API in `api_calls`,
//! numbers and tokens in `api_access`, the org API in `api_org`.

use crate::api_org;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use serde::Deserialize;
use session::transport::{
    ClientCodec, PlivoCodec, TelnyxCodec, TwilioCodec, VonageCodec, WireCodec, MAX_MESSAGE_BYTES,
};
use session::{SessionDeps, UpgradeAuth};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub deps: Arc<SessionDeps>,
    pub prometheus: PrometheusHandle,
    /// The public base URL carriers reach us at (signed URLs, answer documents).
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

/// Largest request body the API reads (chat completions with long histories included).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body that could not be read: too large (413), not JSON (415), or not the expected
/// shape (400, with `hint`).
pub fn body_rejected(r: axum::extract::rejection::JsonRejection, hint: &str) -> ApiError {
    match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over {} KiB", MAX_BODY_BYTES / 1024),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", hint),
    }
}

/// Every error the router or an extractor answers on its own (a bad query string, an unknown
/// route, a wrong method, a body over the limit) becomes the documented JSON error.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let bytes = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let message = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.trim().to_string()
    };
    ApiError::new(status, code, message).into_response()
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/twilio/voice", post(crate::answer::twilio_voice))
        .route("/telnyx/texml", post(crate::answer::telnyx_texml))
        .route("/telnyx/call-control", post(crate::answer::telnyx_call_control))
        .route("/plivo/answer", post(crate::answer::plivo_answer))
        .route("/vonage/answer", get(crate::answer::vonage_answer))
        .route("/twilio/stream", stream_route("/twilio/stream", || Box::new(TwilioCodec::new())))
        .route("/v1/client", stream_route("/v1/client", || Box::new(ClientCodec::new())))
        .route("/telnyx/stream", stream_route("/telnyx/stream", || Box::new(TelnyxCodec::new())))
        .route("/plivo/stream", stream_route("/plivo/stream", || Box::new(PlivoCodec::new())))
        .route("/vonage/stream", stream_route("/vonage/stream", || Box::new(VonageCodec::new())))
        .route("/api/calls", get(crate::api_calls::list_calls))
        .route("/api/calls/{call_id}", get(crate::api_calls::call))
        .route("/api/calls/{call_id}/events", get(crate::api_calls::call_events))
        .route("/api/sessions/{session_id}", get(crate::api_calls::session_by_id))
        .route("/api/sessions/{session_id}/events", get(crate::api_calls::session_events))
        .route("/api/numbers", post(crate::api_access::create_number).get(crate::api_access::list_numbers))
        .route("/api/numbers/{id}", axum::routing::delete(crate::api_access::delete_number))
        .route("/api/client-tokens", post(crate::api_access::create_client_token))
        .route("/api/audiosocket/calls", post(crate::api_access::register_audiosocket_call))
        .route("/api/admin/managed-keys/{provider}", put(put_managed_key))
        .route("/api/admin/orgs", post(api_org::create_org).get(crate::api_admin::list_orgs))
        .route("/api/admin/orgs/{org_id}/wallet", post(api_org::wallet_topup))
        .route("/api/admin/plans", put(api_org::put_plan).get(crate::api_admin::list_plans))
        .route("/api/admin/rates/managed", put(api_org::set_managed))
        .route("/api/admin/rates", put(api_org::put_rate))
        .route("/api/credentials", put(api_org::put_credential).get(api_org::list_credentials))
        .route("/api/credentials/{id}", axum::routing::delete(api_org::delete_credential))
        .route("/api/credentials/check", post(api_org::check_credentials))
        .route("/api/byok", put(api_org::put_byok).get(api_org::get_byok))
        .route("/api/models/access", get(api_org::model_access))
        .route("/api/models/catalog", get(api_org::model_catalog))
        .route("/api/rates/models", get(api_org::rate_models))
        .route("/api/agents", post(api_org::create_agent).get(crate::api_agents::list_agents))
        .route("/api/agents/{id}", get(api_org::get_agent).put(crate::api_agents::update_agent))
        .route("/api/balance", get(api_org::balance))
        .route("/api/usage", get(api_org::usage))
        .route("/api/v1/chat/completions", post(crate::openai_api::chat_completions))
        .route("/api/v1/models", get(crate::openai_api::models))
        // The web pages are not API routes (not in the OpenAPI document).
        .merge(crate::web::router())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// 200 `ok`, or 503 `draining` once shutdown began, so a load balancer stops routing here.
async fn healthz(State(s): State<AppState>) -> Response {
    if s.deps.drain.is_draining() {
        let body = serde_json::json!({"status": "draining", "sandbox": s.deps.access.sandbox, "liveCalls": s.deps.drain.live()});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(serde_json::json!({"status": "ok", "sandbox": s.deps.access.sandbox})).into_response()
}

/// The API described as OpenAPI 3.1 (docs/openapi.json, checked against the router by a test).
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../docs/openapi.json"))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.prometheus.render())
}

/// Upgrade a gateway's websocket and run one session over it with that gateway's codec.
fn gateway_session(s: AppState, ws: WebSocketUpgrade, codec: fn() -> Box<dyn WireCodec>, up: UpgradeAuth) -> Response {
    let deps = s.deps.clone();
    // Small buffers: tungstenite's default 128 KiB read buffer is zero-filled on every read and
    // held per connection, which dominated both CPU and memory per call. Writes collect up to
    // 8 KiB until the writer flushes, so a burst of frames is one socket write.
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| session::run_session(socket, codec(), deps, up))
}

#[derive(Deserialize)]
struct StreamQuery {
    token: Option<String>,
}

/// What the upgrade request carries that may prove the caller: a bearer credential, a token
/// (query, or Telnyx's streaming auth header) and Twilio's signature of the stream URL.
fn upgrade_auth(s: &AppState, headers: &HeaderMap, path: &str, query: StreamQuery) -> UpgradeAuth {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    UpgradeAuth {
        bearer: bearer(headers).map(str::to_string),
        token: query.token.or_else(|| header("x-telnyx-streaming-auth-token")),
        twilio_signature: header("x-twilio-signature"),
        twilio_url: Some(format!("{}{path}", crate::answer::ws_base(s, headers))),
        listener: None,
    }
}

/// One media route: its path and its gateway's codec.
fn stream_route(path: &'static str, codec: fn() -> Box<dyn WireCodec>) -> axum::routing::MethodRouter<AppState> {
    get(
        move |State(s): State<AppState>, headers: HeaderMap, Query(q): Query<StreamQuery>, ws: WebSocketUpgrade| async move {
            let up = upgrade_auth(&s, &headers, path, q);
            gateway_session(s, ws, codec, up)
        },
    )
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyBody {
    api_key: String,
}

/// Admin endpoints need the admin token; without one configured they do not exist.
pub fn check_admin(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if s.deps.access.admin_token.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "set SWITCHBOARD_ADMIN_TOKEN to enable the admin API",
        ));
    }
    if !bearer(headers).is_some_and(|b| s.deps.access.is_admin(b)) {
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
    check_admin(&s, &headers)?;
    let Json(body) = body.map_err(|r| crate::api::body_rejected(r, r#"body must be JSON {"apiKey": "…"}"#))?;
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

    /// What generated clients and schemathesis rely on: a unique operation id, every path
    /// parameter declared, and the JSON error documented for every operation.
    #[test]
    fn every_operation_has_an_id_its_parameters_and_the_error() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../docs/openapi.json")).unwrap();
        let mut ids = std::collections::HashSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(ids.insert(id.to_string()), "{method} {path}: operationId {id} used twice");
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                    assert!(declared.contains(&name), "{method} {path}: path parameter {name} not declared");
                }
                let default = &op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(default, "#/components/schemas/Error", "{method} {path}: no default JSON error");
            }
        }
    }
}
