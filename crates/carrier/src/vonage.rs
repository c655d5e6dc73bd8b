//! Vonage Voice API under `/v1/calls/{uuid}`, Bearer application JWT ([`crate::vonage_jwt`]),
//! JSON bodies (Nexmo/api-specification `definitions/voice.yml`; vonage-python-sdk
//! `vonage_voice/voice.py`):
//!
//! - Hang up: `PUT` `{"action":"hangup"}` → `204`.
//! - Transfer: `PUT` `{"action":"transfer","destination":{"type":"ncco","ncco":[…]}}` → `204`
//!   (`updateCall`; the SDK's `transfer_call_ncco`). The NCCO is one `connect` to a `phone`
//!   endpoint (`number` = E.164 digits without `+`, `AddressE164`) or a `sip` one (`uri`).
//! - DTMF: `PUT …/dtmf` `{"digits":…}` → `200` `{"message":"DTMF sent","uuid":…}` (`startDTMF`;
//!   the SDK's `play_dtmf_into_call`).
//!
//! `404` is the spec's "Not Found" for `updateCall`, a call that is gone; for `…/dtmf` the spec
//! lists only `200`, so `404` there is UNVERIFIED.

use crate::http::{check_id, endpoint, send, Answer};
use crate::{vonage_jwt, Carrier, CarrierError, HangUp, Target, Transfer};
use secrecy::SecretString;
use serde_json::{json, Value};
use url::Url;

pub(crate) async fn hang_up(
    http: &reqwest::Client,
    base: &Url,
    application_id: &str,
    private_key: &SecretString,
    uuid: &str,
) -> Result<HangUp, CarrierError> {
    let url = call_url(base, uuid, None)?;
    let answer = put(http, url, application_id, private_key, &json!({"action": "hangup"})).await?;
    match answer.status {
        _ if answer.ok() => Ok(HangUp::Ended),
        404 => Ok(HangUp::AlreadyEnded),
        _ => Err(answer.error(Carrier::Vonage, None)),
    }
}

/// Replaces the call's NCCO (and with it the websocket `connect` our media runs on) by a
/// `connect` to the target.
pub(crate) async fn transfer(
    http: &reqwest::Client,
    base: &Url,
    application_id: &str,
    private_key: &SecretString,
    uuid: &str,
    transfer: &Transfer,
) -> Result<(), CarrierError> {
    let body = json!({"action": "transfer", "destination": {"type": "ncco", "ncco": ncco(transfer)}});
    let url = call_url(base, uuid, None)?;
    expect_ok(&put(http, url, application_id, private_key, &body).await?)
}

/// `digits` already in Vonage's alphabet (`0-9 * # p`).
pub(crate) async fn send_dtmf(
    http: &reqwest::Client,
    base: &Url,
    application_id: &str,
    private_key: &SecretString,
    uuid: &str,
    digits: &str,
) -> Result<(), CarrierError> {
    let body = json!({"digits": digits});
    let url = call_url(base, uuid, Some("dtmf"))?;
    expect_ok(&put(http, url, application_id, private_key, &body).await?)
}

/// `from` is optional in the API; vonage-python-sdk's `Connect` model insists on `from` or
/// `randomFromNumber`, so without a caller id Vonage picks (UNVERIFIED which number).
fn ncco(transfer: &Transfer) -> Value {
    let endpoint = match &transfer.target {
        Target::Phone(number) => json!({"type": "phone", "number": number.digits()}),
        Target::Sip(uri) => json!({"type": "sip", "uri": uri.as_str()}),
    };
    let mut connect = json!({"action": "connect", "endpoint": [endpoint]});
    if let Some(from) = &transfer.caller_id {
        connect["from"] = json!(from.digits());
    }
    json!([connect])
}

/// `/v1/calls/{uuid}` or `/v1/calls/{uuid}/{sub}`.
fn call_url(base: &Url, uuid: &str, sub: Option<&str>) -> Result<Url, CarrierError> {
    let uuid = check_id(uuid, "call id")?;
    match sub {
        None => endpoint(base, &["v1", "calls", uuid]),
        Some(sub) => endpoint(base, &["v1", "calls", uuid, sub]),
    }
}

async fn put(
    http: &reqwest::Client,
    url: Url,
    application_id: &str,
    private_key: &SecretString,
    body: &Value,
) -> Result<Answer, CarrierError> {
    let jwt = vonage_jwt::sign(application_id, private_key, vonage_jwt::now())?;
    send(Carrier::Vonage, http.put(url).bearer_auth(jwt).json(body)).await
}

fn expect_ok(answer: &Answer) -> Result<(), CarrierError> {
    match answer.status {
        _ if answer.ok() => Ok(()),
        404 => Err(CarrierError::CallEnded(Carrier::Vonage)),
        _ => Err(answer.error(Carrier::Vonage, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PhoneNumber;

    #[test]
    fn ncco_connects_to_the_target() {
        let mut t = Transfer::to(Target::parse("+14155550100").unwrap());
        assert_eq!(ncco(&t), json!([{"action": "connect", "endpoint": [{"type": "phone", "number": "14155550100"}]}]));
        t.caller_id = Some(PhoneNumber::parse("+442079460000").unwrap());
        t.target = Target::parse("sip:desk@pbx.example.com").unwrap();
        let want = json!([{"action": "connect", "from": "442079460000",
            "endpoint": [{"type": "sip", "uri": "sip:desk@pbx.example.com"}]}]);
        assert_eq!(ncco(&t), want);
    }
}
