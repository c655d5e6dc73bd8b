//! One error type for every carrier call. Messages name the carrier, field or status, never a
//! credential, token or response body (a body may echo what was sent).

use crate::{Carrier, CredentialsProblem};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CarrierError {
    #[error("unknown carrier {0:?}")]
    UnknownCarrier(String),
    /// The vault JSON is unusable; the problem names the field, never its value.
    #[error("{0} credentials: {1}")]
    InvalidCredentials(Carrier, CredentialsProblem),
    /// A call id or token we refused to send (empty, not printable ASCII, too long).
    #[error("invalid {0}")]
    InvalidRequest(&'static str),
    #[error("{0} rejected the credentials")]
    Unauthorized(Carrier),
    /// The call ended before the action (Telnyx `90018`, Twilio `20404`/`21220`, Plivo and
    /// Vonage `404`): the caller hung up, or the call was already transferred away.
    #[error("{0} says the call has already ended")]
    CallEnded(Carrier),
    /// The carrier has no REST call for this while the media stream runs (Twilio DTMF).
    #[error("{carrier} cannot {operation} on a streaming call")]
    Unsupported { carrier: Carrier, operation: &'static str },
    /// Any other non-success answer; `code` is the carrier's own error code when it gave one.
    #[error("{carrier} answered HTTP {status}{}", code.as_deref().map(|c| format!(" (code {c})")).unwrap_or_default())]
    Rejected { carrier: Carrier, status: u16, code: Option<String> },
    #[error("{0} did not answer within 5 s")]
    Timeout(Carrier),
    #[error("{carrier} API unreachable")]
    Unreachable {
        carrier: Carrier,
        #[source]
        source: reqwest::Error,
    },
    /// The Vonage private key did not sign (not an RSA key, or the backend failed).
    #[error("could not sign the Vonage application JWT")]
    Jwt,
}

impl CarrierError {
    /// Stable code for API responses and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownCarrier(_) => "unknown_carrier",
            Self::InvalidCredentials(..) => "carrier_invalid_credentials",
            Self::InvalidRequest(_) => "carrier_invalid_request",
            Self::Unauthorized(_) => "carrier_unauthorized",
            Self::CallEnded(_) => "carrier_call_ended",
            Self::Unsupported { .. } => "carrier_unsupported",
            Self::Rejected { .. } => "carrier_rejected",
            Self::Timeout(_) => "carrier_timeout",
            Self::Unreachable { .. } => "carrier_unreachable",
            Self::Jwt => "carrier_jwt",
        }
    }
}
