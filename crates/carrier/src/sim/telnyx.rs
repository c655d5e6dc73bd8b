//! Telnyx Call Control actions: `hangup`, `answer`, `streaming_start`.

use super::auth::bearer;
use super::state::Shared;
use crate::telnyx::CALL_ENDED;
use crate::Carrier;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v2/calls/{call_control_id}/actions/{action}", post(action))
}

async fn action(
    State(sim): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !bearer(&headers).is_some_and(|key| sim.accounts.telnyx_ok(key)) {
        let detail = "Could not understand the provided credentials.";
        return error(StatusCode::UNAUTHORIZED, "10009", "Authentication failed", detail);
    }
    // Every action's body is optional JSON; an empty one means `{}`.
    let body = if body.is_empty() { Ok(json!({})) } else { serde_json::from_slice::<Value>(&body) };
    let Ok(body @ Value::Object(_)) = body else {
        return error(StatusCode::BAD_REQUEST, "10015", "Bad Request", "The request body is not a JSON object.");
    };
    if !matches!(action.as_str(), "hangup" | "answer" | "streaming_start") {
        return error(StatusCode::NOT_FOUND, "10005", "Resource not found", "No such call action in this simulator.");
    }
    if action == "hangup" {
        if sim.end(Carrier::Telnyx, &id) {
            return ok();
        }
        return ended();
    }
    if sim.has_ended(Carrier::Telnyx, &id) {
        return ended();
    }
    if action == "streaming_start" {
        let ws = body.get("stream_url").and_then(Value::as_str).and_then(|u| url::Url::parse(u).ok());
        if !ws.is_some_and(|u| matches!(u.scheme(), "ws" | "wss")) {
            let detail = "stream_url must be a ws:// or wss:// URL.";
            return error(StatusCode::UNPROCESSABLE_ENTITY, "10015", "Invalid value", detail);
        }
        let token_len = body.get("stream_auth_token").and_then(Value::as_str).map_or(0, str::len);
        if token_len > 4000 {
            let detail = "stream_auth_token is longer than 4000 characters.";
            return error(StatusCode::UNPROCESSABLE_ENTITY, "10015", "Invalid value", detail);
        }
    }
    sim.record_action(json!({"carrier": "telnyx", "action": action, "call_control_id": id, "body": body}));
    ok()
}

fn ok() -> Response {
    (StatusCode::OK, Json(json!({"data": {"result": "ok"}}))).into_response()
}

fn ended() -> Response {
    let detail = "This call is no longer active and can't receive commands.";
    error(StatusCode::UNPROCESSABLE_ENTITY, CALL_ENDED, "Call has already ended", detail)
}

/// Telnyx's v2 error body.
fn error(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    let err = json!({
        "code": code,
        "title": title,
        "detail": detail,
        "meta": {"url": format!("https://developers.telnyx.com/docs/overview/errors/{code}")},
    });
    (status, Json(json!({"errors": [err]}))).into_response()
}
