//! Typed STT failures. Messages are bland and never carry the key.

/// Why a recognizer could not connect or stopped. `Clone + PartialEq` so it can ride in
/// [`crate::SttEvent::Error`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SttError {
    /// HTTP 401/403 at the WebSocket upgrade.
    #[error("the STT provider rejected the API key")]
    Unauthorized,
    /// HTTP 429 at the upgrade: too many streams or requests for this key.
    #[error("the STT provider is rate limiting this key")]
    RateLimited,
    #[error("could not connect to the STT provider: {0}")]
    Connect(String),
    /// A provider message we could not decode, or a broken socket.
    #[error("unexpected message from the STT provider: {0}")]
    Protocol(String),
    /// The provider closed the stream mid-way with a non-normal close code.
    #[error("the STT provider closed the stream (code {code}): {reason}")]
    Closed { code: u16, reason: String },
    #[error("timed out talking to the STT provider")]
    Timeout,
}

impl SttError {
    /// Stable machine-readable code for APIs, metrics and session events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "stt_unauthorized",
            Self::RateLimited => "stt_rate_limited",
            Self::Connect(_) => "stt_connect",
            Self::Protocol(_) => "stt_protocol",
            Self::Closed { .. } => "stt_closed",
            Self::Timeout => "stt_timeout",
        }
    }
}

/// A socket that could not be opened, read the same for every adapter: 401/403 is the key, 429
/// the rate limit; other refusals name the upgrade.
impl From<wsclient::OpenError> for SttError {
    fn from(e: wsclient::OpenError) -> Self {
        use wsclient::{OpenError, Refusal};
        match (e.refusal(), e) {
            (Refusal::Unauthorized, _) => Self::Unauthorized,
            (Refusal::RateLimited, _) => Self::RateLimited,
            (_, OpenError::Timeout) => Self::Timeout,
            (_, OpenError::Refused { status, .. }) => Self::Connect(format!("HTTP {status} at upgrade")),
            (_, other) => Self::Connect(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_prefixed() {
        let all = [
            SttError::Unauthorized,
            SttError::RateLimited,
            SttError::Connect("x".into()),
            SttError::Protocol("x".into()),
            SttError::Closed { code: 1011, reason: "NET-0000".into() },
            SttError::Timeout,
        ];
        let mut codes: Vec<_> = all.iter().map(SttError::code).collect();
        assert!(codes.iter().all(|c| c.starts_with("stt_")));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(all[4].to_string(), "the STT provider closed the stream (code 1011): NET-0000");
    }

    #[test]
    fn refused_upgrades_map_by_status() {
        use wsclient::OpenError;
        let refused = |status| SttError::from(OpenError::Refused { status, body: None });
        assert_eq!(refused(401), SttError::Unauthorized);
        assert_eq!(refused(403), SttError::Unauthorized);
        assert_eq!(refused(429), SttError::RateLimited);
        assert_eq!(refused(502), SttError::Connect("HTTP 502 at upgrade".into()));
        assert_eq!(SttError::from(OpenError::Timeout), SttError::Timeout);
        assert_eq!(
            SttError::from(OpenError::InvalidKey),
            SttError::Connect("the API key is not a valid header value".into())
        );
    }
}
