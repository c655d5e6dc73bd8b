//! Vonage Voice `PUT /v1/calls/{uuid}`: `{"action":"hangup"}` with an application JWT.

use super::auth::bearer;
use super::state::Shared;
use crate::{vonage_jwt, Carrier};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1/calls/{uuid}", put(modify_call))
}

async fn modify_call(
    State(sim): State<Arc<Shared>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&sim, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "You did not provide correct credentials.",
        );
    }
    let action = serde_json::from_slice::<Value>(&body).ok();
    if action.as_ref().and_then(|b| b.get("action")).and_then(Value::as_str) != Some("hangup") {
        let detail = "This simulator supports only {\"action\":\"hangup\"}.";
        return error(StatusCode::BAD_REQUEST, "bad-request", "Bad Request", detail);
    }
    if sim.end(Carrier::Vonage, &uuid) {
        return StatusCode::NO_CONTENT.into_response();
    }
    error(StatusCode::NOT_FOUND, "not-found", "Not Found", &format!("Call {uuid} doesn't exist."))
}

/// The JWT's claimed application picks the public key; the key then has to verify it.
fn authorized(sim: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = bearer(headers) else { return false };
    let Some(app) = vonage_jwt::claimed_application(token) else { return false };
    let Some(public_key) = sim.accounts.vonage_public_key(&app) else { return false };
    vonage_jwt::verify(token, public_key, &app, vonage_jwt::now()).is_ok()
}

/// Vonage's RFC 7807 problem body.
fn error(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://developer.nexmo.com/api-errors#{kind}"),
        "title": title,
        "detail": detail,
        "instance": uuid::Uuid::new_v4().to_string(),
    });
    (status, Json(body)).into_response()
}
