//! Typed TTS failures. Messages are bland and never carry the key.

/// Why a synthesizer could not connect or stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TtsError {
    #[error("the provider rejected the API key")]
    Unauthorized,
    #[error("the provider is rate limiting this key")]
    RateLimited,
    #[error("could not connect to the provider: {0}")]
    Connect(String),
    #[error("unexpected message from the provider: {0}")]
    Protocol(String),
    #[error("provider error: {message}")]
    Provider { message: String },
    #[error("the provider closed the stream (code {code}): {reason}")]
    Closed { code: u16, reason: String },
    #[error("sample rate {0} Hz is not offered by this provider")]
    UnsupportedSampleRate(u32),
}

impl TtsError {
    /// Stable machine-readable code for APIs, metrics and session events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::Connect(_) => "connect",
            Self::Protocol(_) => "protocol",
            Self::Provider { .. } => "provider",
            Self::Closed { .. } => "closed",
            Self::UnsupportedSampleRate(_) => "unsupported_sample_rate",
        }
    }
}

/// A socket that could not be opened: 401/403 is the key, 429 the rate limit, anything else
/// (`timed out`, `HTTP 502`, a TLS failure) a bland `Connect`. Adapters whose providers explain
/// a refusal in its body read it first (see `socket::refused`).
impl From<wsclient::OpenError> for TtsError {
    fn from(e: wsclient::OpenError) -> Self {
        use wsclient::Refusal;
        match e.refusal() {
            Refusal::Unauthorized => Self::Unauthorized,
            Refusal::RateLimited => Self::RateLimited,
            Refusal::Other => Self::Connect(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [
            TtsError::Unauthorized,
            TtsError::RateLimited,
            TtsError::Connect("x".into()),
            TtsError::Protocol("x".into()),
            TtsError::Provider { message: "x".into() },
            TtsError::Closed { code: 1011, reason: "x".into() },
            TtsError::UnsupportedSampleRate(11025),
        ];
        let mut codes: Vec<_> = all.iter().map(TtsError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn failed_opens_map_by_status() {
        use wsclient::OpenError;
        let refused = |status| TtsError::from(OpenError::Refused { status, body: None });
        assert_eq!(refused(401), TtsError::Unauthorized);
        assert_eq!(refused(429), TtsError::RateLimited);
        assert_eq!(refused(502), TtsError::Connect("HTTP 502".into()));
        assert_eq!(TtsError::from(OpenError::Timeout), TtsError::Connect("timed out".into()));
    }
}
