//! Telnyx Call Control: `POST /v2/calls/{call_control_id}/actions/{action}`, Bearer API key,
//! `200` `{"data":{"result":"ok"}}`. Ids look like `v3:…`; the `:` stays unescaped, as Telnyx's
//! SDK sends it. An action on a call that has ended answers `422` with error code `90018`.
//! `transfer` takes `to` (E.164 or SIP URI) and an optional `from`
//! (developers.telnyx.com/api-reference/call-commands/transfer-call; telnyx-ruby
//! `ActionTransferParams`); `send_dtmf` takes `digits`
//! (developers.telnyx.com/api-reference/call-commands/send-dtmf).

use crate::http::{check_id, endpoint, send, Answer};
use crate::{Carrier, CarrierError, HangUp, Transfer};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use url::Url;

/// Telnyx's error code for "Call has already ended" (what the simulator answers too).
pub const CALL_ENDED: &str = "90018";
/// Telnyx's limit on `stream_auth_token`.
const MAX_STREAM_TOKEN: usize = 4000;

pub(crate) async fn hang_up(
    http: &reqwest::Client,
    base: &Url,
    api_key: &SecretString,
    call_control_id: &str,
) -> Result<HangUp, CarrierError> {
    let answer = action(http, base, api_key, call_control_id, "hangup", &json!({})).await?;
    match answer.status {
        _ if answer.ok() => Ok(HangUp::Ended),
        422 if has_code(&answer, CALL_ENDED) => Ok(HangUp::AlreadyEnded),
        _ => Err(answer.error(Carrier::Telnyx, first_code(&answer))),
    }
}

/// Answers an inbound Call Control call, then starts the bidirectional media stream to
/// `stream_url`. Two requests because `answer` takes no `stream_auth_token`, and the token is
/// what binds the media socket to this call (Telnyx sends it as the upgrade header
/// `x-telnyx-streaming-auth-token`). A caller gone before either step gives
/// [`CarrierError::CallEnded`].
pub async fn telnyx_answer_and_stream(
    http: &reqwest::Client,
    base: &Url,
    api_key: &SecretString,
    call_control_id: &str,
    stream_url: &str,
    stream_auth_token: &str,
) -> Result<(), CarrierError> {
    if stream_auth_token.is_empty() || stream_auth_token.len() > MAX_STREAM_TOKEN {
        return Err(CarrierError::InvalidRequest("stream_auth_token"));
    }
    let answer = action(http, base, api_key, call_control_id, "answer", &json!({})).await?;
    expect_ok(&answer)?;
    let body = json!({
        "stream_url": stream_url,
        "stream_track": "inbound_track",
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": "PCMU",
        "stream_auth_token": stream_auth_token,
    });
    let answer = action(http, base, api_key, call_control_id, "streaming_start", &body).await?;
    expect_ok(&answer)
}

/// Dials the target and bridges it to the call. A failed dial leaves the original call active
/// (Telnyx's transfer page); only its webhooks tell.
pub(crate) async fn transfer(
    http: &reqwest::Client,
    base: &Url,
    api_key: &SecretString,
    call_control_id: &str,
    transfer: &Transfer,
) -> Result<(), CarrierError> {
    let mut body = json!({"to": transfer.target.as_str()});
    if let Some(from) = &transfer.caller_id {
        body["from"] = json!(from.as_str());
    }
    expect_ok(&action(http, base, api_key, call_control_id, "transfer", &body).await?)
}

pub(crate) async fn send_dtmf(
    http: &reqwest::Client,
    base: &Url,
    api_key: &SecretString,
    call_control_id: &str,
    digits: &str,
) -> Result<(), CarrierError> {
    let body = json!({"digits": digits});
    expect_ok(&action(http, base, api_key, call_control_id, "send_dtmf", &body).await?)
}

async fn action(
    http: &reqwest::Client,
    base: &Url,
    api_key: &SecretString,
    call_control_id: &str,
    action: &str,
    body: &Value,
) -> Result<Answer, CarrierError> {
    let id = check_id(call_control_id, "call id")?;
    let url = endpoint(base, &["v2", "calls", id, "actions", action])?;
    send(Carrier::Telnyx, http.post(url).bearer_auth(api_key.expose_secret()).json(body)).await
}

fn expect_ok(answer: &Answer) -> Result<(), CarrierError> {
    match answer.status {
        _ if answer.ok() => Ok(()),
        422 if has_code(answer, CALL_ENDED) => Err(CarrierError::CallEnded(Carrier::Telnyx)),
        _ => Err(answer.error(Carrier::Telnyx, first_code(answer))),
    }
}

/// Codes of `{"errors":[{"code":"90018","title":…,"detail":…}]}`. Only short alphanumeric
/// ones: a code ends up in our error text, the rest of the body never does.
fn codes(answer: &Answer) -> Vec<String> {
    let Some(Value::Object(mut obj)) = answer.json() else { return Vec::new() };
    let Some(Value::Array(errors)) = obj.remove("errors") else { return Vec::new() };
    let plausible = |c: &&str| c.len() <= 16 && c.bytes().all(|b| b.is_ascii_alphanumeric());
    errors.iter().filter_map(|e| e.get("code").and_then(Value::as_str).filter(plausible).map(str::to_string)).collect()
}

fn has_code(answer: &Answer, code: &str) -> bool {
    codes(answer).iter().any(|c| c == code)
}

fn first_code(answer: &Answer) -> Option<String> {
    codes(answer).into_iter().next()
}
