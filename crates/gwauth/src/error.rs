//! Refusals. Messages name the header or field at fault, never a secret or a signature value.

/// Why a webhook or stream token was refused; every variant maps to HTTP 403 / WS close 1008.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A required header or claim is absent or empty; the payload names it.
    #[error("missing {0}")]
    Missing(&'static str),
    /// Present but not decodable (bad base64/hex, wrong length, not a number…); names the field.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Well-formed, but the signature or MAC does not match.
    #[error("signature does not match")]
    BadSignature,
    /// The signed timestamp is outside the allowed clock skew (or a token expires too far ahead).
    #[error("timestamp outside the allowed window")]
    Stale,
    /// The token or JWT has expired.
    #[error("token expired")]
    Expired,
    /// The stream token names a key id this node does not hold.
    #[error("unknown key id")]
    UnknownKey,
    /// A valid stream token minted for another carrier's endpoint.
    #[error("token was issued for another carrier")]
    WrongCarrier,
}

impl AuthError {
    /// Stable machine-readable code for logs, metrics and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing(_) => "missing_signature",
            Self::Malformed(_) => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale_timestamp",
            Self::Expired => "token_expired",
            Self::UnknownKey => "unknown_key",
            Self::WrongCarrier => "wrong_carrier",
        }
    }
}

/// Why a stream-key spec (`"1:<base64>,2:<base64>"`) was refused. Entries are named by position
/// (1-based) so an operator can find the bad one without the key being echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySpecError {
    #[error("stream key spec has no keys")]
    Empty,
    #[error("stream key entry {entry}: {reason}")]
    BadEntry { entry: usize, reason: &'static str },
}

impl KeySpecError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "stream_keys_empty",
            Self::BadEntry { .. } => "stream_keys_invalid",
        }
    }
}
