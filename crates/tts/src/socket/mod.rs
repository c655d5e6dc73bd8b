//! Pieces shared by the websocket adapters whose providers speak one JSON dialect each
//! (Cartesia, Deepgram Aura, Rime): URL mapping, the handshake, a REST key check, and the
//! [`pump`] task that owns the socket.

pub(crate) mod pump;
pub(crate) mod words;

use crate::TtsError;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bound on TCP + TLS + WebSocket handshake; a hung provider must not stall a turn.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A key check is interactive; a provider that does not answer in this time is unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// `base` + `path`, with http(s) mapped to ws(s) (`ws = true`) or ws(s) to http(s).
pub(crate) fn endpoint(base: &Url, ws: bool, path: &[&str]) -> Result<Url, TtsError> {
    let secure = match base.scheme() {
        "http" | "ws" => false,
        "https" | "wss" => true,
        other => return Err(TtsError::Connect(format!("unsupported URL scheme {other:?}"))),
    };
    let scheme = match (ws, secure) {
        (true, true) => "wss",
        (true, false) => "ws",
        (false, true) => "https",
        (false, false) => "http",
    };
    let mut url = base.clone();
    url.set_scheme(scheme).map_err(|()| TtsError::Connect("cannot use this base URL".into()))?;
    url.path_segments_mut()
        .map_err(|()| TtsError::Connect("base URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(path);
    url.set_query(None);
    Ok(url)
}

/// A header value carrying the key, marked sensitive so no debug output shows it.
pub(crate) fn secret_header(prefix: &str, key: &SecretString) -> Result<HeaderValue, TtsError> {
    let mut v = HeaderValue::try_from(format!("{prefix}{}", key.expose_secret()))
        .map_err(|_| TtsError::Connect("the API key is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Opens the socket with `headers`; refusals become typed errors (401/403 → Unauthorized).
pub(crate) async fn connect(url: &Url, headers: Vec<(&'static str, HeaderValue)>) -> Result<Ws, TtsError> {
    let mut request = url.as_str().into_client_request().map_err(|e| TtsError::Connect(format!("bad request: {e}")))?;
    for (name, value) in headers {
        request.headers_mut().insert(name, value);
    }
    let (ws, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true),
    )
    .await
    .map_err(|_| TtsError::Connect("timed out".into()))?
    .map_err(handshake_error)?;
    Ok(ws)
}

fn handshake_error(e: tungstenite::Error) -> TtsError {
    match e {
        tungstenite::Error::Http(resp) => {
            let body = resp.body().as_deref().map(body_message).unwrap_or_default();
            refusal(resp.status().as_u16(), body)
        }
        other => TtsError::Connect(other.to_string()),
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

/// Small socket buffers (see the ElevenLabs adapter for why); Nagle off.
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_maps_schemes_and_drops_query() {
        let base = Url::parse("https://api.example.com/?x=1").unwrap();
        assert_eq!(
            endpoint(&base, true, &["tts", "websocket"]).unwrap().as_str(),
            "wss://api.example.com/tts/websocket"
        );
        let base = Url::parse("ws://127.0.0.1:9/").unwrap();
        assert_eq!(endpoint(&base, false, &["v1", "models"]).unwrap().as_str(), "http://127.0.0.1:9/v1/models");
        assert!(endpoint(&Url::parse("ftp://x").unwrap(), true, &[]).is_err());
    }

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
