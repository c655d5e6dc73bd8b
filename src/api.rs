//! HTTP surface: the router (and with it the OpenAPI document), the JSON error, health,
//! metrics and the managed-key rotation. The media websockets are in `api_media`, carrier
//! answer webhooks in `answer`, the calls API in `api_calls`, numbers and tokens in
//! `api_access`, the org API in `api_org`.

use crate::api_auth::AdminToken;
use crate::api_org;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use session::SessionDeps;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The JSON error every operation may answer (`{"error": {"code", "message"}}`).
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `not_found`, `unauthorized`, `byok_not_in_plan`, …
    code: String,
    /// For people; never carries a secret.
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message } };
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

/// [`body_rejected`] with serde's account of what is wrong (`tools[0].run: unknown variant …`),
/// for bodies that hold no secret (serde quotes the values it refuses).
pub fn body_rejected_in_detail(r: axum::extract::rejection::JsonRejection, hint: &str) -> ApiError {
    let detail = r.body_text();
    match body_rejected(r, hint) {
        e if e.status == StatusCode::BAD_REQUEST => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("{hint}: {detail}"))
        }
        e => e,
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

/// The API: every route with its OpenAPI operation, from one list (`routes!` reads each
/// handler's `#[utoipa::path]`; the gateways' routes come from their registry rows), so
/// nothing is routed undocumented or documented unrouted.
fn api_routes() -> OpenApiRouter<AppState> {
    use crate::{api_access as access, api_admin as admin, api_agents as agents, api_calls as calls};
    use crate::{api_models as models, openai_api as openai};
    crate::gateways::add_routes(OpenApiRouter::with_openapi(crate::openapi::base()))
        .routes(routes!(healthz))
        .routes(routes!(openapi))
        .routes(routes!(metrics))
        .routes(routes!(calls::list_calls))
        .routes(routes!(calls::call))
        .routes(routes!(calls::call_events))
        .routes(routes!(calls::session_by_id))
        .routes(routes!(calls::session_events))
        .routes(routes!(access::create_number, access::list_numbers))
        .routes(routes!(access::delete_number))
        .routes(routes!(access::create_client_token))
        .routes(routes!(access::register_audiosocket_call))
        .routes(routes!(put_managed_key))
        .routes(routes!(admin::create_org, admin::list_orgs))
        .routes(routes!(admin::wallet_topup))
        .routes(routes!(admin::put_plan, admin::list_plans))
        .routes(routes!(admin::set_managed))
        .routes(routes!(admin::put_rate))
        .routes(routes!(api_org::put_credential, api_org::list_credentials))
        .routes(routes!(api_org::delete_credential))
        .routes(routes!(api_org::check_credentials))
        .routes(routes!(api_org::put_byok, api_org::get_byok))
        .routes(routes!(models::model_access))
        .routes(routes!(models::model_catalog))
        .routes(routes!(models::rate_models))
        .routes(routes!(agents::create_agent, agents::list_agents))
        .routes(routes!(agents::get_agent, agents::update_agent))
        .routes(routes!(api_org::balance))
        .routes(routes!(api_org::usage))
        .routes(routes!(openai::chat_completions))
        .routes(routes!(openai::models))
}

/// The API's router and its finished document.
fn api_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = api_routes().split_for_parts();
    crate::openapi::finish(&mut doc);
    (router, doc)
}

/// The OpenAPI document of the API the router serves.
pub fn document() -> utoipa::openapi::OpenApi {
    api_parts().1
}

pub fn router(state: AppState) -> Router {
    let (api, doc) = api_parts();
    crate::openapi::serve(&doc);
    api
        // The web pages are not API routes (not in the OpenAPI document).
        .merge(crate::web::router())
        .fallback(no_route)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// A path nothing serves: the JSON error, saying so (distinct from a handler's own 404).
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route for {method} {}", uri.path()))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `draining` once shutdown began.
    status: &'static str,
    /// No provider keys: every provider is a simulator.
    sandbox: bool,
    /// Calls still running, while draining.
    #[serde(skip_serializing_if = "Option::is_none")]
    live_calls: Option<usize>,
}

/// Liveness and mode
///
/// 200 `ok`, or 503 `draining` once shutdown began, so a load balancer stops routing here.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, description = "Draining", body = Health)))]
async fn healthz(State(s): State<AppState>) -> Response {
    let sandbox = s.deps.access.sandbox;
    if s.deps.drain.is_draining() {
        let body = Health { status: "draining", sandbox, live_calls: Some(s.deps.drain.live()) };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(Health { status: "ok", sandbox, live_calls: None }).into_response()
}

/// This document
///
/// The OpenAPI 3.1 document of this API, generated from the code at start-up.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::served())
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.prometheus.render())
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyBody {
    api_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct ManagedKey {
    provider: String,
    last4: String,
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

/// Rotate a managed (platform) provider key; running calls keep theirs
///
/// Sessions already running keep the key they started with.
#[utoipa::path(put, path = "/api/admin/managed-keys/{provider}", operation_id = "putManagedKey", tag = "admin",
    security(("adminToken" = [])), params(("provider" = String, Path)), request_body = KeyBody,
    responses((status = 200, body = ManagedKey)))]
async fn put_managed_key(
    State(s): State<AppState>,
    _: AdminToken,
    Path(provider): Path<String>,
    body: Result<Json<KeyBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ManagedKey>, ApiError> {
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
    Ok(Json(ManagedKey { provider, last4 }))
}

#[cfg(test)]
mod tests {
    /// The other half of "the document is what the router does" (`tests/openapi_client.rs`
    /// checks that every documented operation is routed): the API routes are exactly the
    /// `routes!` handlers of `api_routes` and the gateways' rows, one operation each, and `router` adds nothing but
    /// the web pages, so no served route is missing from the document.
    #[test]
    fn every_served_api_route_is_a_documented_operation() {
        let src = include_str!("api.rs");
        let body = |from: &str| {
            let s = &src[src.find(from).expect("function")..];
            &s[..s.find("\n}\n").expect("function end")]
        };
        let calls: Vec<&str> = body("fn api_routes(").split("\n        .").skip(1).collect();
        for call in &calls {
            assert!(call.starts_with("routes(routes!("), "an API route outside routes!: .{call}");
        }
        let handlers: usize = calls.iter().map(|c| c.matches(',').count() + 1).sum();
        let gateway_ops: usize = crate::gateways::routes()
            .map(|(_, paths, _)| {
                paths.paths.values().map(|item| [&item.get, &item.post].into_iter().flatten().count()).sum::<usize>()
            })
            .sum();
        assert!(gateway_ops >= crate::gateways::GATEWAYS.len(), "every gateway has a route");
        let handlers = handlers + gateway_ops;
        let doc = serde_json::to_value(super::document()).expect("document");
        let operations: usize =
            doc["paths"].as_object().expect("paths").values().map(|item| item.as_object().map_or(0, |o| o.len())).sum();
        assert_eq!(handlers, operations, "every routes! handler is one operation of the document");
        let router = body("pub fn router(");
        for undocumented in [".route(", ".nest(", ".route_service(", ".nest_service("] {
            assert!(!router.contains(undocumented), "router() adds a route the document does not have: {undocumented}");
        }
    }
}
