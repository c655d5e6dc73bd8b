//! Plivo `DELETE Call`: ends a live call.

use super::auth::basic;
use super::state::Shared;
use crate::Carrier;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::delete;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Shared>> {
    // Plivo's resource URLs end in `/`; without it is a different (missing) route.
    Router::new().route("/v1/Account/{auth_id}/Call/{call_uuid}/", delete(hang_up))
}

async fn hang_up(
    State(sim): State<Arc<Shared>>,
    Path((auth_id, call_uuid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let authorized =
        basic(&headers).is_some_and(|(user, token)| user == auth_id && sim.accounts.plivo_ok(&user, &token));
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    if sim.end(Carrier::Plivo, &call_uuid) {
        return StatusCode::NO_CONTENT.into_response();
    }
    error(StatusCode::NOT_FOUND, "not found")
}

/// Plivo's error body: a request id and a message.
fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"api_id": uuid::Uuid::new_v4().to_string(), "error": message}))).into_response()
}
