//! Plivo calls: `DELETE` ends a live call, `POST` transfers it (`legs=aleg`, `aleg_url`,
//! `aleg_method`; the XML at `aleg_url` is then fetched, see [`super::plivo_fetch`]), `POST
//! …/DTMF/` sends digits.

use super::auth::basic;
use super::plivo_fetch;
use super::service::CarrierRoute;
use super::state::Shared;
use carrier::Carrier;
use serde_json::{json, Map, Value};
use simkit::{Reply, Request, Route};
use std::sync::Arc;

/// `DELETE /v1/Account/{auth_id}/Call/{call_uuid}/`.
pub(super) fn hang_up(sim: &Shared, auth_id: &str, call_uuid: &str, req: &Request) -> Reply {
    if !authorized(sim, auth_id, req) {
        return unauthorized();
    }
    if sim.end(Carrier::Plivo, call_uuid) {
        return Reply::empty(204);
    }
    error(404, "not found")
}

/// `POST /v1/Account/{auth_id}/Call/{call_uuid}/`. Only the caller's leg is simulated
/// (`legs=aleg`); `aleg_method` defaults to `POST`, as Plivo's does. Answers `202` once the
/// call is handed over, like Plivo, whose fetch of the XML happens after; here it happens
/// before the answer (a deferred reply), so a test sees it recorded at once.
pub(super) fn transfer(sim: &Arc<Shared>, auth_id: &str, call_uuid: &str, req: &Request) -> CarrierRoute {
    if !authorized(sim, auth_id, req) {
        return Route::Reply(unauthorized());
    }
    let Some(params) = params(req) else {
        return Route::Reply(error(400, "body must be a JSON object or a form"));
    };
    let text = |name: &str| params.get(name).and_then(Value::as_str);
    let url = text("aleg_url").and_then(|u| url::Url::parse(u).ok()).filter(|u| matches!(u.scheme(), "http" | "https"));
    let method = text("aleg_method").unwrap_or("POST");
    let (Some("aleg"), Some(url), "GET" | "POST") = (text("legs"), url, method) else {
        return Route::Reply(error(400, "legs must be aleg with an http(s) aleg_url and aleg_method GET or POST"));
    };
    if !sim.transfer_out(Carrier::Plivo, call_uuid) {
        return Route::Reply(error(404, "not found"));
    }
    let (sim, call_uuid, method) = (sim.clone(), call_uuid.to_string(), method.to_string());
    Route::Deferred(Box::pin(async move {
        let fetched = plivo_fetch::dial(&sim.http, &url, &method, &call_uuid).await;
        sim.record_transfer(json!({
            "carrier": "plivo",
            "call_id": call_uuid,
            "aleg_url": url.as_str(),
            "aleg_method": method,
            "xml": fetched.xml,
            "target": fetched.dial.as_ref().map(|d| d.target.as_str()),
            "caller_id": fetched.dial.as_ref().and_then(|d| d.caller_id.as_deref()),
            "fetch_error": fetched.error,
        }));
        accepted("call transferred")
    }))
}

/// `POST /v1/Account/{auth_id}/Call/{call_uuid}/DTMF/`: `digits` of `0-9 A-D * #` and the
/// pauses `w`/`W` (the alphabet of Plivo's `send_digits`); `leg` only `aleg`.
pub(super) fn send_digits(sim: &Shared, auth_id: &str, call_uuid: &str, req: &Request) -> Reply {
    if !authorized(sim, auth_id, req) {
        return unauthorized();
    }
    let params = params(req).unwrap_or_default();
    let allowed = |b: u8| b.is_ascii_digit() || matches!(b, b'A'..=b'D' | b'*' | b'#' | b'w' | b'W');
    let digits = params.get("digits").and_then(Value::as_str).filter(|d| !d.is_empty() && d.bytes().all(allowed));
    let leg_ok = params.get("leg").is_none_or(|l| l == "aleg");
    let (Some(digits), true) = (digits, leg_ok) else {
        return error(400, "digits must be 0-9, A-D, *, #, w or W; leg only aleg");
    };
    if sim.has_ended(Carrier::Plivo, call_uuid) {
        return error(404, "not found");
    }
    sim.record_dtmf(json!({"carrier": "plivo", "call_id": call_uuid, "digits": digits}));
    accepted("digits sent")
}

fn authorized(sim: &Shared, auth_id: &str, req: &Request) -> bool {
    basic(req).is_some_and(|(user, token)| user == auth_id && sim.accounts.plivo_ok(&user, &token))
}

/// A JSON object (what plivo-python sends) or a form (what older clients send), as JSON.
fn params(req: &Request) -> Option<Map<String, Value>> {
    if req.header("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) {
        let form = url::form_urlencoded::parse(&req.body);
        return Some(form.map(|(k, v)| (k.into_owned(), Value::from(v.into_owned()))).collect());
    }
    match serde_json::from_slice(&req.body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn accepted(message: &str) -> Reply {
    Reply::json(202, json!({"message": message, "api_id": uuid::Uuid::new_v4().to_string()}).to_string())
}

fn unauthorized() -> Reply {
    error(401, "Authentication failed")
}

/// Plivo's error body: a request id and a message.
fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({"api_id": uuid::Uuid::new_v4().to_string(), "error": message}).to_string())
}
