//! Twilio `Calls` update: `Status=completed` ends a call.

use super::auth::basic;
use super::state::Shared;
use crate::twilio::NOT_FOUND;
use crate::Carrier;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/2010-04-01/Accounts/{account_sid}/Calls/{call}", post(update_call))
}

async fn update_call(
    State(sim): State<Arc<Shared>>,
    Path((account_sid, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account_sid}/Calls/{call}");
    let authorized =
        basic(&headers).is_some_and(|(user, token)| user == account_sid && sim.accounts.twilio_ok(&user, &token));
    if !authorized {
        let mut resp = error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"Twilio API\""));
        return resp;
    }
    // Only the JSON representation is simulated; `.xml` or none is a resource we do not have.
    let Some(call_sid) = call.strip_suffix(".json") else {
        return not_found(&path);
    };
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let completing = url::form_urlencoded::parse(&body).any(|(k, v)| k == "Status" && v == "completed");
    if !form_encoded || !completing {
        return error(StatusCode::BAD_REQUEST, 20001, "Status must be 'completed' (form-encoded) in this simulator");
    }
    if !sim.end(Carrier::Twilio, call_sid) {
        return not_found(&path);
    }
    let call = json!({
        "sid": call_sid,
        "account_sid": account_sid,
        "status": "completed",
        "uri": format!("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"),
    });
    (StatusCode::OK, Json(call)).into_response()
}

fn not_found(path: &str) -> Response {
    error(StatusCode::NOT_FOUND, NOT_FOUND, &format!("The requested resource {path} was not found"))
}

/// Twilio's REST error body.
fn error(status: StatusCode, code: u64, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}
