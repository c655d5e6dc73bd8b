//! Telnyx Call Control actions: `hangup`, `answer`, `streaming_start`, `transfer`, `send_dtmf`.

use super::auth::bearer;
use super::state::Shared;
use carrier::TELNYX_CALL_ENDED as CALL_ENDED;
use carrier::{Carrier, Target};
use serde_json::{json, Value};
use simkit::{Reply, Request};

/// `POST /v2/calls/{call_control_id}/actions/{action}`.
pub(super) fn action(sim: &Shared, id: &str, action: &str, req: &Request) -> Reply {
    if !bearer(req).is_some_and(|key| sim.accounts.telnyx_ok(key)) {
        let detail = "Could not understand the provided credentials.";
        return error(401, "10009", "Authentication failed", detail);
    }
    // Every action's body is optional JSON; an empty one means `{}`.
    let body = if req.body.is_empty() { Ok(json!({})) } else { serde_json::from_slice::<Value>(&req.body) };
    let Ok(body @ Value::Object(_)) = body else {
        return error(400, "10015", "Bad Request", "The request body is not a JSON object.");
    };
    if !matches!(action, "hangup" | "answer" | "streaming_start" | "transfer" | "send_dtmf") {
        return error(404, "10005", "Resource not found", "No such call action in this simulator.");
    }
    if action == "hangup" {
        if sim.end(Carrier::Telnyx, id) {
            return ok();
        }
        return ended();
    }
    if sim.has_ended(Carrier::Telnyx, id) {
        return ended();
    }
    match action {
        "streaming_start" => streaming_start(sim, id, body),
        "transfer" => transfer(sim, id, body),
        "send_dtmf" => send_dtmf(sim, id, body),
        _ => {
            sim.record_action(json!({"carrier": "telnyx", "action": action, "call_control_id": id, "body": body}));
            ok()
        }
    }
}

fn streaming_start(sim: &Shared, id: &str, body: Value) -> Reply {
    let ws = body.get("stream_url").and_then(Value::as_str).and_then(|u| url::Url::parse(u).ok());
    if !ws.is_some_and(|u| matches!(u.scheme(), "ws" | "wss")) {
        return invalid("stream_url must be a ws:// or wss:// URL.");
    }
    let token_len = body.get("stream_auth_token").and_then(Value::as_str).map_or(0, str::len);
    if token_len > 4000 {
        return invalid("stream_auth_token is longer than 4000 characters.");
    }
    sim.record_action(json!({"carrier": "telnyx", "action": "streaming_start", "call_control_id": id, "body": body}));
    ok()
}

/// `to` is required, a number or SIP URI; `from` optional, likewise. The call then belongs to
/// the transfer: later commands answer 90018.
fn transfer(sim: &Shared, id: &str, body: Value) -> Reply {
    let target = |name| body.get(name).and_then(Value::as_str).filter(|t| Target::parse(t).is_ok());
    let Some(to) = target("to").map(str::to_string) else {
        return invalid("to must be an E.164 number or a SIP URI.");
    };
    let from = body.get("from").cloned();
    if from.is_some() && target("from").is_none() {
        return invalid("from must be an E.164 number or a SIP URI.");
    }
    if !sim.transfer_out(Carrier::Telnyx, id) {
        return ended();
    }
    let record = json!({"carrier": "telnyx", "call_id": id, "target": to, "caller_id": from, "body": body});
    sim.record_transfer(record);
    ok()
}

/// Telnyx's alphabet: `0-9 A-D * #`, `w`/`W` pauses.
fn send_dtmf(sim: &Shared, id: &str, body: Value) -> Reply {
    let allowed = |b: u8| b.is_ascii_digit() || matches!(b, b'A'..=b'D' | b'*' | b'#' | b'w' | b'W');
    let Some(digits) = body.get("digits").and_then(Value::as_str).filter(|d| !d.is_empty() && d.bytes().all(allowed))
    else {
        return invalid("digits must be 0-9, A-D, *, # or the pauses w and W.");
    };
    sim.record_dtmf(json!({"carrier": "telnyx", "call_id": id, "digits": digits}));
    ok()
}

fn invalid(detail: &str) -> Reply {
    error(422, "10015", "Invalid value", detail)
}

fn ok() -> Reply {
    Reply::json(200, json!({"data": {"result": "ok"}}).to_string())
}

fn ended() -> Reply {
    let detail = "This call is no longer active and can't receive commands.";
    error(422, CALL_ENDED, "Call has already ended", detail)
}

/// Telnyx's v2 error body.
fn error(status: u16, code: &str, title: &str, detail: &str) -> Reply {
    let err = json!({
        "code": code,
        "title": title,
        "detail": detail,
        "meta": {"url": format!("https://developers.telnyx.com/docs/overview/errors/{code}")},
    });
    Reply::json(status, json!({"errors": [err]}).to_string())
}
