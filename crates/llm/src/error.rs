//! Typed LLM failures. Provider messages are kept (they explain a 400) but scrubbed of anything
//! that looks like an API key, because providers echo keys in their error text.

/// Why a completion could not start or stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    #[error("the provider rejected the API key")]
    Unauthorized,
    #[error("the provider refused this key access to the model or resource")]
    Forbidden,
    #[error("the provider is rate limiting this key")]
    RateLimited { retry_after_ms: Option<u64> },
    #[error("the provider rejected the request: {0}")]
    BadRequest(String),
    #[error("the provider failed (HTTP {status})")]
    Server { status: u16 },
    #[error("could not reach the provider: {0}")]
    Http(String),
    #[error("the response stream broke: {0}")]
    Stream(String),
}

impl LlmError {
    /// Stable machine-readable code for APIs, metrics and session events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::RateLimited { .. } => "rate_limited",
            Self::BadRequest(_) => "bad_request",
            Self::Server { .. } => "server",
            Self::Http(_) => "http",
            Self::Stream(_) => "stream",
        }
    }

    /// Maps a non-2xx answer to its error. `message` is the provider's `error.message`, if any.
    pub(crate) fn from_status(status: u16, retry_after_ms: Option<u64>, message: Option<&str>) -> Self {
        let described = |fallback: &str| match message {
            Some(m) if !m.trim().is_empty() => scrub(m),
            _ => format!("HTTP {status} {fallback}"),
        };
        match status {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            429 => Self::RateLimited { retry_after_ms },
            500.. => Self::Server { status },
            400..=499 => Self::BadRequest(described("without an error message")),
            _ => Self::Http(format!("unexpected HTTP status {status}")),
        }
    }
}

/// A transport failure with its causes ("error sending request: … connection refused"), which
/// the top-level reqwest message alone hides. URLs carry no key here; still scrubbed.
pub(crate) fn describe_transport(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    scrub(&text)
}

/// Longest provider text kept in an error; a runaway body must not bloat logs and events.
const MAX_MESSAGE_CHARS: usize = 500;
/// Provider key prefixes (OpenAI/Anthropic `sk-`, Stripe-like `sk_`, Groq `gsk_`, xAI `xai-`,
/// Google `AIza`).
const KEY_PREFIXES: [&str; 5] = ["sk-", "sk_", "gsk_", "xai-", "AIza"];
/// A prefixed token longer than this is treated as a key.
const MIN_PREFIXED_KEY: usize = 8;
/// An unprefixed token this long mixing letters and digits is treated as a secret too.
const MIN_OPAQUE_KEY: usize = 32;

/// Replaces key-looking tokens (`sk-proj-abc…` → `sk-***`, long opaque tokens → `***`) and caps
/// the length.
pub(crate) fn scrub(text: &str) -> String {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.');
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS));
    let mut rest = text;
    while let Some(start) = rest.find(is_key_char) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let len = tail.find(|c: char| !is_key_char(c)).unwrap_or(tail.len());
        let token = &tail[..len];
        out.push_str(&mask(token));
        rest = &tail[len..];
    }
    out.push_str(rest);
    if out.chars().count() > MAX_MESSAGE_CHARS {
        out = out.chars().take(MAX_MESSAGE_CHARS).collect();
        out.push('…');
    }
    out
}

fn mask(token: &str) -> std::borrow::Cow<'_, str> {
    // A sentence's final period is punctuation, not part of the token.
    let core = token.trim_end_matches('.');
    if let Some(prefix) = KEY_PREFIXES.iter().find(|p| core.starts_with(**p)) {
        if core.len() > MIN_PREFIXED_KEY {
            return format!("{prefix}***{}", &token[core.len()..]).into();
        }
    }
    let opaque = core.len() >= MIN_OPAQUE_KEY
        && core.chars().any(|c| c.is_ascii_digit())
        && core.chars().any(|c| c.is_ascii_alphabetic());
    if opaque {
        return format!("***{}", &token[core.len()..]).into();
    }
    token.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [
            LlmError::Unauthorized,
            LlmError::Forbidden,
            LlmError::RateLimited { retry_after_ms: None },
            LlmError::BadRequest("x".into()),
            LlmError::Server { status: 500 },
            LlmError::Http("x".into()),
            LlmError::Stream("x".into()),
        ];
        let mut codes: Vec<_> = all.iter().map(LlmError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn status_mapping() {
        assert_eq!(LlmError::from_status(401, None, Some("bad key sk-abcdefghijkl")), LlmError::Unauthorized);
        assert_eq!(LlmError::from_status(403, None, None), LlmError::Forbidden);
        assert_eq!(LlmError::from_status(429, Some(1500), None), LlmError::RateLimited { retry_after_ms: Some(1500) });
        assert_eq!(LlmError::from_status(503, None, None), LlmError::Server { status: 503 });
        assert_eq!(
            LlmError::from_status(404, None, Some("The model `gpt-9` does not exist")),
            LlmError::BadRequest("The model `gpt-9` does not exist".into())
        );
        assert_eq!(
            LlmError::from_status(422, None, None),
            LlmError::BadRequest("HTTP 422 without an error message".into())
        );
    }

    #[test]
    fn scrub_masks_keys_and_keeps_prose() {
        let msg = "Incorrect API key provided: sk-proj-abcDEF123456789. You can find your API key at https://platform.openai.com/account/api-keys.";
        let s = scrub(msg);
        assert_eq!(
            s,
            "Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys."
        );
        // OpenAI's own partially masked form must not leak its last four either.
        assert_eq!(scrub("key sk-proj-****wxyz is bad"), "key sk-*** is bad");
        assert_eq!(scrub("groq gsk_0123456789abcdef"), "groq gsk_***");
        assert_eq!(scrub("token 0123456789abcdefghij0123456789abcdef!"), "token ***!");
        // Short sk- words and model names survive.
        assert_eq!(scrub("sk-1 and gpt-4o-mini-2024-07-18"), "sk-1 and gpt-4o-mini-2024-07-18");
    }

    #[test]
    fn scrub_caps_length() {
        let long = "word ".repeat(400);
        assert_eq!(scrub(&long).chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
