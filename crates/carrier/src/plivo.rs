//! Plivo REST under `/v1/Account/{auth_id}/Call/{call_uuid}/` (trailing slash included), Basic
//! `auth_id:auth_token`, JSON bodies as plivo-python sends them (`Content-Type:
//! application/json`, `rest/client.py`). `404` means the call is no longer live.
//!
//! - Hang up: `DELETE` → `204`.
//! - Transfer: `POST` `{"legs":"aleg","aleg_url":…,"aleg_method":…}` → `202`
//!   `{"message":"call transferred","api_id":…}`; Plivo then fetches the XML at `aleg_url`
//!   (plivo.com/docs/voice/api/call/transfer-a-call; plivo-python `calls.transfer`).
//! - DTMF: `POST …/DTMF/` `{"digits":…}` → `202` `{"message":"digits sent","api_id":…}`
//!   (plivo.com/docs/voice/api/call/dtmf/send-digits-on-a-call; plivo-python
//!   `calls.send_digits`).
//!
//! `404` on transfer and DTMF is UNVERIFIED (documented for hang-up only, pipecat's Plivo
//! serializer); other errors are `{"api_id":…,"error":…}` (plivo-python `process_response`).

use crate::http::{check_id, endpoint, send};
use crate::{Carrier, CarrierError, HangUp, PlivoXml};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use url::Url;

/// Plivo fetches `aleg_url` itself; longer URLs than this are not ones we mint.
const MAX_URL: usize = 2048;

pub(crate) async fn hang_up(
    http: &reqwest::Client,
    base: &Url,
    auth_id: &str,
    auth_token: &SecretString,
    call_uuid: &str,
) -> Result<HangUp, CarrierError> {
    let url = call_url(base, auth_id, call_uuid, None)?;
    let answer = send(Carrier::Plivo, http.delete(url).basic_auth(auth_id, Some(auth_token.expose_secret()))).await?;
    match answer.status {
        _ if answer.ok() => Ok(HangUp::Ended),
        404 => Ok(HangUp::AlreadyEnded),
        _ => Err(answer.error(Carrier::Plivo, None)),
    }
}

/// Points the caller's leg (`aleg`) at `xml.url`, which must answer [`crate::plivo_dial_xml`].
pub(crate) async fn transfer(
    http: &reqwest::Client,
    base: &Url,
    auth_id: &str,
    auth_token: &SecretString,
    call_uuid: &str,
    xml: &PlivoXml,
) -> Result<(), CarrierError> {
    if !matches!(xml.url.scheme(), "http" | "https") || xml.url.as_str().len() > MAX_URL {
        return Err(CarrierError::InvalidRequest("Plivo XML URL"));
    }
    let url = call_url(base, auth_id, call_uuid, None)?;
    let body = json!({"legs": "aleg", "aleg_url": xml.url.as_str(), "aleg_method": xml.method.as_str()});
    post(http, url, auth_id, auth_token, &body).await
}

pub(crate) async fn send_dtmf(
    http: &reqwest::Client,
    base: &Url,
    auth_id: &str,
    auth_token: &SecretString,
    call_uuid: &str,
    digits: &str,
) -> Result<(), CarrierError> {
    let url = call_url(base, auth_id, call_uuid, Some("DTMF"))?;
    post(http, url, auth_id, auth_token, &json!({"digits": digits})).await
}

/// `…/Call/{call_uuid}/` or `…/Call/{call_uuid}/{sub}/`.
fn call_url(base: &Url, auth_id: &str, call_uuid: &str, sub: Option<&str>) -> Result<Url, CarrierError> {
    let auth_id = check_id(auth_id, "account id")?;
    let call_uuid = check_id(call_uuid, "call id")?;
    match sub {
        None => endpoint(base, &["v1", "Account", auth_id, "Call", call_uuid, ""]),
        Some(sub) => endpoint(base, &["v1", "Account", auth_id, "Call", call_uuid, sub, ""]),
    }
}

async fn post(
    http: &reqwest::Client,
    url: Url,
    auth_id: &str,
    auth_token: &SecretString,
    body: &Value,
) -> Result<(), CarrierError> {
    let req = http.post(url).basic_auth(auth_id, Some(auth_token.expose_secret())).json(body);
    let answer = send(Carrier::Plivo, req).await?;
    match answer.status {
        _ if answer.ok() => Ok(()),
        404 => Err(CarrierError::CallEnded(Carrier::Plivo)),
        _ => Err(answer.error(Carrier::Plivo, None)),
    }
}
