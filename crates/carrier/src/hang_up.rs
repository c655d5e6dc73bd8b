//! Ending a call from our side, whatever the carrier. Closing the media socket alone may not end
//! it (Twilio resumes the TwiML after `<Connect>`), so the session always calls this, and a
//! call that already ended counts as done.

use crate::{plivo, telnyx, twilio, vonage, CarrierError, Credentials};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangUp {
    Ended,
    /// The carrier had already ended it (the caller hung up first, or a retry).
    AlreadyEnded,
}

/// Hangs up `call_id` (Twilio `CallSid`, Telnyx `call_control_id`, Plivo `CallUUID`, Vonage
/// call `uuid`) at `base`, the carrier's API base ([`crate::default_base`]) or a simulator's.
pub async fn hang_up(
    http: &reqwest::Client,
    base: &Url,
    creds: &Credentials,
    call_id: &str,
) -> Result<HangUp, CarrierError> {
    match creds {
        Credentials::Twilio { account_sid, auth_token } => {
            twilio::hang_up(http, base, account_sid, auth_token, call_id).await
        }
        Credentials::Telnyx { api_key, .. } => telnyx::hang_up(http, base, api_key, call_id).await,
        Credentials::Plivo { auth_id, auth_token } => plivo::hang_up(http, base, auth_id, auth_token, call_id).await,
        Credentials::Vonage { application_id, private_key, .. } => {
            vonage::hang_up(http, base, application_id, private_key, call_id).await
        }
    }
}
