//! The TTS side of the shared socket client ([`wsclient`]): refusals, a REST key check, and the [`pump`] that runs every streaming adapter's [`pump::Dialect`] on wsclient's
//! frame loop (Cartesia, Deepgram Aura and Flux, Rime, ElevenLabs, xAI, Soniox).

pub(crate) mod pump;
pub(crate) mod words;

use crate::TtsError;
use bytes::Bytes;
use secrecy::SecretString;
use std::time::Duration;
use url::Url;
use wsclient::{HeaderMap, HeaderValue, OpenError, Ws};

/// Bound on TCP + TLS + WebSocket handshake; a hung provider must not stall a turn.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A key check is interactive; a provider that does not answer in this time is unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Base64 audio from a provider message (s16le, passed through untouched).
pub(crate) fn b64_audio(b64: &str) -> Result<Bytes, TtsError> {
    base64_simd::STANDARD
        .decode_to_vec(b64.as_bytes())
        .map(Bytes::from)
        .map_err(|e| TtsError::Protocol(format!("audio is not base64: {e}")))
}

/// A text frame that is not JSON of the provider's shape.
pub(crate) fn bad_json(e: serde_json::Error) -> TtsError {
    TtsError::Protocol(format!("bad JSON from provider: {e}"))
}

/// A frame none of `provider`'s known messages parse. One with a `type` is a newer message type,
/// which must not kill a stream (`None`, logged); anything else is a provider bug and ends it.
pub(crate) fn unknown_message(provider: &str, text: &str, e: serde_json::Error) -> Option<TtsError> {
    if serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.get("type").is_some()) {
        tracing::debug!(error = %e, "{provider}: skipped an unknown message");
        return None;
    }
    Some(bad_json(e))
}

/// A header value carrying the key after `prefix`, marked sensitive so no debug output shows it.
pub(crate) fn secret_header(prefix: &str, key: &SecretString) -> Result<HeaderValue, TtsError> {
    Ok(wsclient::secret_header(prefix, key)?)
}

/// Opens the socket with `headers`, reading a refusal's body for the provider's reason.
pub(crate) async fn connect(url: &Url, headers: HeaderMap) -> Result<Ws, TtsError> {
    wsclient::open(url, headers, CONNECT_TIMEOUT).await.map_err(refused)
}

/// A failed open, with the provider's own explanation when its refusal body has one
/// (Deepgram: "No such model/version combination found.").
pub(crate) fn refused(e: OpenError) -> TtsError {
    match e {
        OpenError::Refused { status, body } => refusal(status, body.as_deref().map(body_message).unwrap_or_default()),
        other => other.into(),
    }
}

/// Maps an HTTP refusal; `message` is the provider's own explanation, if any.
fn refusal(status: u16, message: String) -> TtsError {
    match status {
        401 | 403 => TtsError::Unauthorized,
        429 => TtsError::RateLimited,
        s if message.is_empty() => TtsError::Connect(format!("HTTP {s}")),
        s => TtsError::Provider { message: format!("HTTP {s}: {message}") },
    }
}

/// The human-readable part of a JSON error body, bounded so a large page cannot flood logs.
fn body_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let text = ["err_msg", "message", "error", "detail", "title"]
        .iter()
        .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str))
        .unwrap_or("");
    text.chars().take(200).collect()
}

/// The provider's cheapest authenticated GET: 2xx proves the key, 401/403 refuse it.
pub(crate) async fn check_get(
    http: &reqwest::Client,
    url: Url,
    headers: &[(&'static str, HeaderValue)],
) -> Result<(), TtsError> {
    let mut req = http.get(url.as_str()).timeout(CHECK_TIMEOUT);
    for (name, value) in headers {
        req = req.header(*name, value.as_bytes());
    }
    let resp = req.send().await.map_err(|e| {
        // reqwest's Display names the URL only; our URLs never carry the key.
        TtsError::Connect(if e.is_timeout() { "timed out".into() } else { e.without_url().to_string() })
    })?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = resp.bytes().await.map(|b| body_message(&b)).unwrap_or_default();
    Err(refusal(status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_typed_and_bodies_bounded() {
        assert_eq!(refusal(401, String::new()), TtsError::Unauthorized);
        assert_eq!(refusal(429, "slow".into()), TtsError::RateLimited);
        assert_eq!(refusal(502, String::new()), TtsError::Connect("HTTP 502".into()));
        let body = br#"{"err_code":"INVALID_QUERY_PARAMETER","err_msg":"No such model"}"#;
        assert_eq!(body_message(body), "No such model");
        assert_eq!(body_message(b"<html>"), "");
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(500));
        assert_eq!(body_message(long.as_bytes()).len(), 200);
    }
}
