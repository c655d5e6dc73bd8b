//! Transferring a live call away from Switchboard to a number or SIP URI, through the
//! carrier's REST API. Twilio, Plivo and Vonage replace the call's instructions (TwiML, Plivo
//! XML, NCCO) with a dial to the target; Telnyx bridges a new leg to it. On Twilio that ends the
//! `<Connect><Stream>` the session runs on (its TwiML is gone); whether Plivo's `<Stream>`,
//! Vonage's websocket leg and Telnyx's stream stop by themselves is UNVERIFIED, so the session
//! should close its side of the media socket itself and end with reason `transferred`.
//!
//! # After a transfer, do not hang up
//! The call id still names the caller's leg, now bridged to the target: [`crate::hang_up`] on it
//! would cut the transferred caller off. The session must skip its closing hang-up.

use crate::{plivo, telnyx, twilio, vonage, CarrierError, Credentials, PhoneNumber, Target};
use url::Url;

/// What to transfer to, and what each carrier needs besides.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub target: Target,
    /// The number the target sees as calling (Twilio `callerId`, Telnyx `from`, Vonage
    /// connect `from`; for Plivo it goes into [`crate::plivo_dial_xml`]). `None` leaves it to
    /// the carrier: usually the original caller's number, which some carriers refuse to
    /// present on an outbound leg unless the account allows it.
    pub caller_id: Option<PhoneNumber>,
    /// Plivo only, and required there: Plivo's Transfer API takes no dial instructions, only a
    /// URL it fetches them from. Switchboard serves [`crate::plivo_dial_xml`] there.
    pub plivo_xml: Option<PlivoXml>,
}

impl Transfer {
    pub fn to(target: Target) -> Self {
        Self { target, caller_id: None, plivo_xml: None }
    }
}

/// Where Plivo fetches the transferred leg's XML (`aleg_url`) and with which verb
/// (`aleg_method`, Plivo's default `POST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlivoXml {
    pub url: Url,
    pub method: XmlMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlMethod {
    Get,
    Post,
}

impl XmlMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// Transfers `call_id` (as for [`crate::hang_up`]) at `base`. A call that has already ended
/// (or was transferred before) gives [`CarrierError::CallEnded`]; refused credentials give
/// [`CarrierError::Unauthorized`]. `Ok` means the carrier accepted the transfer, not that the
/// target answered: a failed dial is reported by the carrier's own webhooks.
pub async fn transfer(
    http: &reqwest::Client,
    base: &Url,
    creds: &Credentials,
    call_id: &str,
    transfer: &Transfer,
) -> Result<(), CarrierError> {
    match creds {
        Credentials::Twilio { account_sid, auth_token } => {
            twilio::transfer(http, base, account_sid, auth_token, call_id, transfer).await
        }
        Credentials::Telnyx { api_key, .. } => telnyx::transfer(http, base, api_key, call_id, transfer).await,
        Credentials::Plivo { auth_id, auth_token } => {
            let xml = transfer.plivo_xml.as_ref().ok_or(CarrierError::InvalidRequest("Plivo XML URL"))?;
            plivo::transfer(http, base, auth_id, auth_token, call_id, xml).await
        }
        Credentials::Vonage { application_id, private_key, .. } => {
            vonage::transfer(http, base, application_id, private_key, call_id, transfer).await
        }
    }
}
