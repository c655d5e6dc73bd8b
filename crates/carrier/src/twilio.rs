//! Twilio REST: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with
//! `Status=completed`, Basic `AccountSid:AuthToken`. `200` + call JSON; `404` code `20404` when
//! the call is gone.

use crate::http::{check_id, endpoint, send};
use crate::{Carrier, CarrierError, HangUp};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Twilio's "resource not found": the call ended (or never was) under this account.
pub(crate) const NOT_FOUND: u64 = 20404;

pub(crate) async fn hang_up(
    http: &reqwest::Client,
    base: &Url,
    account_sid: &str,
    auth_token: &SecretString,
    call_sid: &str,
) -> Result<HangUp, CarrierError> {
    let account_sid = check_id(account_sid, "account id")?;
    let call = format!("{}.json", check_id(call_sid, "call id")?);
    let url = endpoint(base, &["2010-04-01", "Accounts", account_sid, "Calls", &call])?;
    let req = http
        .post(url)
        .basic_auth(account_sid, Some(auth_token.expose_secret()))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("Status=completed");
    let answer = send(Carrier::Twilio, req).await?;
    let code = answer.json().and_then(|v| v.get("code").and_then(|c| c.as_u64()));
    match answer.status {
        _ if answer.ok() => Ok(HangUp::Ended),
        404 if code == Some(NOT_FOUND) => Ok(HangUp::AlreadyEnded),
        _ => Err(answer.error(Carrier::Twilio, code.map(|c| c.to_string()))),
    }
}
