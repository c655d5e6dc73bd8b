//! Twilio `Calls` update: `Status=completed` ends a call, `Twiml=<Response><Dial>…` transfers it.

use super::auth::basic;
use super::dial_doc;
use super::state::Shared;
use carrier::Carrier;
use carrier::{TWILIO_NOT_FOUND as NOT_FOUND, TWILIO_NOT_IN_PROGRESS as NOT_IN_PROGRESS};
use serde_json::json;
use simkit::{Reply, Request};

/// `POST /2010-04-01/Accounts/{account_sid}/Calls/{call}`.
pub(super) fn update_call(sim: &Shared, account_sid: &str, call: &str, req: &Request) -> Reply {
    let path = format!("/2010-04-01/Accounts/{account_sid}/Calls/{call}");
    let authorized =
        basic(req).is_some_and(|(user, token)| user == account_sid && sim.accounts.twilio_ok(&user, &token));
    if !authorized {
        return error(401, 20003, "Authenticate").header("www-authenticate", "Basic realm=\"Twilio API\"");
    }
    // Only the JSON representation is simulated; `.xml` or none is a resource we do not have.
    let Some(call_sid) = call.strip_suffix(".json") else {
        return not_found(&path);
    };
    let form_encoded = req.header("content-type").is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match (form_encoded, field("Status"), field("Twiml")) {
        (true, Some("completed"), None) => hang_up(sim, &path, account_sid, call_sid),
        (true, None, Some(twiml)) => transfer(sim, account_sid, call_sid, twiml),
        _ => error(400, 20001, "Send Status=completed or Twiml (form-encoded) in this simulator"),
    }
}

fn hang_up(sim: &Shared, path: &str, account_sid: &str, call_sid: &str) -> Reply {
    if !sim.end(Carrier::Twilio, call_sid) {
        return not_found(path);
    }
    call_json(account_sid, call_sid, "completed")
}

/// The new TwiML must be the one `<Dial>` the carrier crate sends; the call is then no longer
/// ours, so a later update of it is refused as not in progress.
fn transfer(sim: &Shared, account_sid: &str, call_sid: &str, twiml: &str) -> Reply {
    let Some(dial) = dial_doc::parse(twiml, "Sip") else {
        // Twilio's "Document parse failure"; which code its REST update gives is not documented.
        return error(400, 12100, "Twiml is not the <Dial> this simulator understands");
    };
    if !sim.transfer_out(Carrier::Twilio, call_sid) {
        return error(400, NOT_IN_PROGRESS, "Call is not in-progress. Cannot redirect.");
    }
    sim.record_transfer(json!({
        "carrier": "twilio",
        "call_id": call_sid,
        "target": dial.target,
        "caller_id": dial.caller_id,
        "twiml": twiml,
    }));
    call_json(account_sid, call_sid, "in-progress")
}

fn call_json(account_sid: &str, call_sid: &str, status: &str) -> Reply {
    let call = json!({
        "sid": call_sid,
        "account_sid": account_sid,
        "status": status,
        "uri": format!("/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"),
    });
    Reply::json(200, call.to_string())
}

fn not_found(path: &str) -> Reply {
    error(404, NOT_FOUND, &format!("The requested resource {path} was not found"))
}

/// Twilio's REST error body.
fn error(status: u16, code: u64, message: &str) -> Reply {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    Reply::json(status, body.to_string())
}
