//! Vonage Voice `PUT /v1/calls/{uuid}` (`{"action":"hangup"}` or `{"action":"transfer",
//! "destination":{"type":"ncco","ncco":[…]}}`) and `PUT /v1/calls/{uuid}/dtmf`, with an
//! application JWT.

use super::auth::bearer;
use super::state::Shared;
use carrier::{vonage_jwt, Carrier, SipUri};
use serde_json::{json, Value};
use simkit::{Reply, Request};

/// `PUT /v1/calls/{uuid}`.
pub(super) fn modify_call(sim: &Shared, uuid: &str, req: &Request) -> Reply {
    if !authorized(sim, req) {
        return unauthorized();
    }
    let body = serde_json::from_slice::<Value>(&req.body).unwrap_or_default();
    match body.get("action").and_then(Value::as_str) {
        Some("hangup") => match sim.end(Carrier::Vonage, uuid) {
            true => Reply::empty(204),
            false => not_found(uuid),
        },
        Some("transfer") => transfer(sim, uuid, &body),
        _ => bad_request("This simulator supports {\"action\":\"hangup\"} and {\"action\":\"transfer\"}."),
    }
}

/// An inline NCCO whose first action is a `connect` to one `phone` (E.164 digits, no `+`) or
/// `sip` endpoint: what the carrier crate sends. Transfers by `url` are not simulated.
fn transfer(sim: &Shared, uuid: &str, body: &Value) -> Reply {
    let destination = body.get("destination").filter(|d| d.get("type").and_then(Value::as_str) == Some("ncco"));
    let Some(ncco) = destination.and_then(|d| d.get("ncco")).filter(|n| n.is_array()) else {
        return bad_request("destination must be {\"type\":\"ncco\",\"ncco\":[…]}.");
    };
    let connect = ncco.get(0).filter(|a| a.get("action").and_then(Value::as_str) == Some("connect"));
    let Some(target) = connect.and_then(|c| c.get("endpoint")?.get(0)).and_then(endpoint_target) else {
        return bad_request("The NCCO must start with a connect to a phone or sip endpoint.");
    };
    let from = connect.and_then(|c| c.get("from")).cloned();
    if from.as_ref().is_some_and(|f| !f.as_str().is_some_and(e164_digits)) {
        return bad_request("from must be an E.164 number without +.");
    }
    if !sim.transfer_out(Carrier::Vonage, uuid) {
        return not_found(uuid);
    }
    sim.record_transfer(
        json!({"carrier": "vonage", "call_id": uuid, "target": target, "caller_id": from, "ncco": ncco}),
    );
    Reply::empty(204)
}

fn endpoint_target(endpoint: &Value) -> Option<String> {
    let field = |name| endpoint.get(name).and_then(Value::as_str);
    match field("type")? {
        "phone" => field("number").filter(|n| e164_digits(n)).map(str::to_string),
        "sip" => field("uri").filter(|u| SipUri::parse(u).is_ok()).map(str::to_string),
        _ => None,
    }
}

/// Vonage's `AddressE164`: 7 to 15 digits, no `+`.
fn e164_digits(number: &str) -> bool {
    (7..=15).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
}

/// `{"digits"}` of `0-9 * #` and the 500 ms pause `p` (vonage-python-sdk's `Dtmf`).
pub(super) fn dtmf(sim: &Shared, uuid: &str, req: &Request) -> Reply {
    if !authorized(sim, req) {
        return unauthorized();
    }
    let body = serde_json::from_slice::<Value>(&req.body).unwrap_or_default();
    let allowed = |b: u8| b.is_ascii_digit() || matches!(b, b'*' | b'#' | b'p');
    let Some(digits) = body.get("digits").and_then(Value::as_str).filter(|d| !d.is_empty() && d.bytes().all(allowed))
    else {
        return bad_request("digits must be 0-9, *, # or p.");
    };
    if sim.has_ended(Carrier::Vonage, uuid) {
        return not_found(uuid);
    }
    sim.record_dtmf(json!({"carrier": "vonage", "call_id": uuid, "digits": digits}));
    Reply::json(200, json!({"message": "DTMF sent", "uuid": uuid}).to_string())
}

/// The JWT's claimed application picks the public key; the key then has to verify it.
fn authorized(sim: &Shared, req: &Request) -> bool {
    let Some(token) = bearer(req) else { return false };
    let Some(app) = vonage_jwt::claimed_application(token) else { return false };
    let Some(public_key) = sim.accounts.vonage_public_key(&app) else { return false };
    vonage_jwt::verify(token, public_key, &app, vonage_jwt::now()).is_ok()
}

fn unauthorized() -> Reply {
    error(401, "unauthorized", "Unauthorized", "You did not provide correct credentials.")
}

fn bad_request(detail: &str) -> Reply {
    error(400, "bad-request", "Bad Request", detail)
}

fn not_found(uuid: &str) -> Reply {
    error(404, "not-found", "Not Found", &format!("Call {uuid} doesn't exist."))
}

/// Vonage's RFC 7807 problem body.
fn error(status: u16, kind: &str, title: &str, detail: &str) -> Reply {
    let body = json!({
        "type": format!("https://developer.nexmo.com/api-errors#{kind}"),
        "title": title,
        "detail": detail,
        "instance": uuid::Uuid::new_v4().to_string(),
    });
    Reply::json(status, body.to_string())
}
