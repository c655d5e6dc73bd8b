//! Twilio REST: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`, form-encoded,
//! Basic `AccountSid:AuthToken`; `200` + call JSON. `Status=completed` hangs up; `Twiml=<Response>
//! <Dial>…` transfers (twilio.com/docs/voice/api/call-resource#update-a-call-resource, the
//! "modify calls in progress" guides). A call that is gone answers `404` code `20404`; one
//! that exists but is no longer in progress answers `400` code `21220` ("Call is not
//! in-progress. Cannot redirect.", twilio.com/docs/errors/21220; the 400 as seen in
//! bmlt-enabled/yap#570). Twilio has no DTMF call: see [`crate::send_dtmf`].

use crate::dial_xml::twilio_dial_twiml;
use crate::http::{check_id, endpoint, send, Answer};
use crate::{Carrier, CarrierError, HangUp, Transfer};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Twilio's "resource not found": the call ended (or never was) under this account (what the
/// simulator answers too).
pub const NOT_FOUND: u64 = 20404;
/// Twilio's "Invalid call state": a live-call operation on a call that has completed.
pub const NOT_IN_PROGRESS: u64 = 21220;

pub(crate) async fn hang_up(
    http: &reqwest::Client,
    base: &Url,
    account_sid: &str,
    auth_token: &SecretString,
    call_sid: &str,
) -> Result<HangUp, CarrierError> {
    let answer = update(http, base, account_sid, auth_token, call_sid, "Status=completed".into()).await?;
    match answer.ok() {
        true => Ok(HangUp::Ended),
        false if ended(&answer) => Ok(HangUp::AlreadyEnded),
        false => Err(refused(&answer)),
    }
}

/// Replaces the call's TwiML with a `<Dial>` to the target; the `<Connect><Stream>` it was
/// running ends with it.
pub(crate) async fn transfer(
    http: &reqwest::Client,
    base: &Url,
    account_sid: &str,
    auth_token: &SecretString,
    call_sid: &str,
    transfer: &Transfer,
) -> Result<(), CarrierError> {
    let twiml = twilio_dial_twiml(&transfer.target, transfer.caller_id.as_ref());
    let form = url::form_urlencoded::Serializer::new(String::new()).append_pair("Twiml", &twiml).finish();
    let answer = update(http, base, account_sid, auth_token, call_sid, form).await?;
    match answer.ok() {
        true => Ok(()),
        false if ended(&answer) => Err(CarrierError::CallEnded(Carrier::Twilio)),
        false => Err(refused(&answer)),
    }
}

async fn update(
    http: &reqwest::Client,
    base: &Url,
    account_sid: &str,
    auth_token: &SecretString,
    call_sid: &str,
    form: String,
) -> Result<Answer, CarrierError> {
    let account_sid = check_id(account_sid, "account id")?;
    let call = format!("{}.json", check_id(call_sid, "call id")?);
    let url = endpoint(base, &["2010-04-01", "Accounts", account_sid, "Calls", &call])?;
    let req = http
        .post(url)
        .basic_auth(account_sid, Some(auth_token.expose_secret()))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form);
    send(Carrier::Twilio, req).await
}

/// Whether a non-success answer says the call is over; a body without Twilio's code never does.
fn ended(answer: &Answer) -> bool {
    matches!((answer.status, code(answer)), (404, Some(NOT_FOUND)) | (400, Some(NOT_IN_PROGRESS)))
}

fn refused(answer: &Answer) -> CarrierError {
    answer.error(Carrier::Twilio, code(answer).map(|c| c.to_string()))
}

fn code(answer: &Answer) -> Option<u64> {
    answer.json().and_then(|v| v.get("code").and_then(|c| c.as_u64()))
}
