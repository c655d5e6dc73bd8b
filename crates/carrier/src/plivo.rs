//! Plivo REST: `DELETE /v1/Account/{auth_id}/Call/{call_uuid}/` (trailing slash included), Basic
//! `auth_id:auth_token`. `204` ends it; `404` means it is no longer live.

use crate::http::{check_id, endpoint, send};
use crate::{Carrier, CarrierError, HangUp};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub(crate) async fn hang_up(
    http: &reqwest::Client,
    base: &Url,
    auth_id: &str,
    auth_token: &SecretString,
    call_uuid: &str,
) -> Result<HangUp, CarrierError> {
    let auth_id = check_id(auth_id, "account id")?;
    let call_uuid = check_id(call_uuid, "call id")?;
    let url = endpoint(base, &["v1", "Account", auth_id, "Call", call_uuid, ""])?;
    let req = http.delete(url).basic_auth(auth_id, Some(auth_token.expose_secret()));
    let answer = send(Carrier::Plivo, req).await?;
    match answer.status {
        _ if answer.ok() => Ok(HangUp::Ended),
        404 => Ok(HangUp::AlreadyEnded),
        _ => Err(answer.error(Carrier::Plivo, None)),
    }
}
