//! Vonage Voice API: `PUT /v1/calls/{uuid}` `{"action":"hangup"}`, Bearer application JWT
//! ([`crate::vonage_jwt`]). `204` ends it; `404` means the call is gone.

use crate::http::{check_id, endpoint, send};
use crate::{vonage_jwt, Carrier, CarrierError, HangUp};
use secrecy::SecretString;
use url::Url;

pub(crate) async fn hang_up(
    http: &reqwest::Client,
    base: &Url,
    application_id: &str,
    private_key: &SecretString,
    uuid: &str,
) -> Result<HangUp, CarrierError> {
    let url = endpoint(base, &["v1", "calls", check_id(uuid, "call id")?])?;
    let jwt = vonage_jwt::sign(application_id, private_key, vonage_jwt::now())?;
    let req = http.put(url).bearer_auth(jwt).json(&serde_json::json!({"action": "hangup"}));
    let answer = send(Carrier::Vonage, req).await?;
    match answer.status {
        _ if answer.ok() => Ok(HangUp::Ended),
        404 => Ok(HangUp::AlreadyEnded),
        _ => Err(answer.error(Carrier::Vonage, None)),
    }
}
