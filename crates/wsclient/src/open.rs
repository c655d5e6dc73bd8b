//! Opening a provider socket: headers, a bounded handshake, small buffers, typed refusals.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderMap, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

/// A client socket to a provider, plain or TLS.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a socket could not be opened. Messages are bland and never carry the key; a refusal
/// keeps the provider's status and body so each service can read them its own way.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("the API key is not a valid header value")]
    InvalidKey,
    /// The URL or a header could not make an upgrade request.
    #[error("bad request: {0}")]
    Request(String),
    /// TCP + TLS + upgrade did not finish within the timeout.
    #[error("timed out")]
    Timeout,
    /// The provider answered the upgrade with an HTTP status instead of 101.
    #[error("HTTP {status}")]
    Refused { status: u16, body: Option<Vec<u8>> },
    /// DNS, TCP, TLS or protocol failure. The text is tungstenite's, which may quote the URL.
    #[error("{0}")]
    Failed(String),
    /// The base URL cannot make a provider endpoint (see [`endpoint`]).
    #[error("{0}")]
    BadUrl(String),
}

/// Which protocol family an [`endpoint`] speaks; TLS follows the base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `ws` or `wss`: the streaming socket.
    Ws,
    /// `http` or `https`: a key check or session init beside it.
    Http,
}

/// `base` with `path` appended, its scheme mapped to `scheme`'s family (keeping TLS), and its
/// query dropped. A base URL is configured once per provider (`https://api.deepgram.com` or a
/// simulator's `ws://127.0.0.1:port`) and serves both the socket and the REST calls.
pub fn endpoint(base: &Url, scheme: Scheme, path: &[&str]) -> Result<Url, OpenError> {
    let tls = match base.scheme() {
        "ws" | "http" => false,
        "wss" | "https" => true,
        other => return Err(OpenError::BadUrl(format!("unsupported URL scheme {other:?}"))),
    };
    let name = match (scheme, tls) {
        (Scheme::Ws, false) => "ws",
        (Scheme::Ws, true) => "wss",
        (Scheme::Http, false) => "http",
        (Scheme::Http, true) => "https",
    };
    let mut url = base.clone();
    url.set_scheme(name).map_err(|()| OpenError::BadUrl("cannot use this base URL".into()))?;
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| OpenError::BadUrl("base URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(path);
    Ok(url)
}

/// What a refused upgrade means, the same for every provider (HTTP 401/403 is the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unauthorized,
    RateLimited,
    /// Any other status, or no status at all.
    Other,
}

impl OpenError {
    /// 401/403 → [`Refusal::Unauthorized`], 429 → [`Refusal::RateLimited`].
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::Refused { status: 401 | 403, .. } => Refusal::Unauthorized,
            Self::Refused { status: 429, .. } => Refusal::RateLimited,
            _ => Refusal::Other,
        }
    }
}

/// Small socket buffers: tungstenite's default 128 KiB read buffer is zero-filled on every read
/// and held per connection, which dominated CPU and memory per call. No write buffer: every
/// frame is latency-sensitive and goes out at once ([`open`] also turns Nagle off).
pub fn config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

/// A header value carrying a key after `prefix` (`"Token "`, `"Bearer "`, `""`), marked
/// sensitive so no debug output shows it.
pub fn secret_header(prefix: &str, key: &SecretString) -> Result<HeaderValue, OpenError> {
    let mut value =
        HeaderValue::try_from(format!("{prefix}{}", key.expose_secret())).map_err(|_| OpenError::InvalidKey)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Headers for [`open`] from `(name, value)` pairs.
pub fn headers<const N: usize>(pairs: [(&'static str, HeaderValue); N]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(N);
    for (name, value) in pairs {
        map.insert(name, value);
    }
    map
}

/// Connects to `url` with `headers` and upgrades, all within `timeout` (a hung provider must
/// not stall a call).
pub async fn open(url: &Url, headers: HeaderMap, timeout: Duration) -> Result<Ws, OpenError> {
    let mut request = url.as_str().into_client_request().map_err(|e| OpenError::Request(e.to_string()))?;
    request.headers_mut().extend(headers);
    let (ws, _) =
        tokio::time::timeout(timeout, tokio_tungstenite::connect_async_with_config(request, Some(config()), true))
            .await
            .map_err(|_| OpenError::Timeout)?
            .map_err(|e| match e {
                tungstenite::Error::Http(resp) => {
                    let status = resp.status().as_u16();
                    OpenError::Refused { status, body: resp.into_body() }
                }
                other => OpenError::Failed(other.to_string()),
            })?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_the_same_for_every_provider() {
        let refused = |status| OpenError::Refused { status, body: None };
        assert_eq!(refused(401).refusal(), Refusal::Unauthorized);
        assert_eq!(refused(403).refusal(), Refusal::Unauthorized);
        assert_eq!(refused(429).refusal(), Refusal::RateLimited);
        assert_eq!(refused(502).refusal(), Refusal::Other);
        assert_eq!(refused(502).to_string(), "HTTP 502");
        assert_eq!(OpenError::Timeout.refusal(), Refusal::Other);
    }

    #[test]
    fn endpoints_map_schemes_keep_tls_and_drop_the_query() {
        let base = Url::parse("https://api.example.com/?x=1").unwrap();
        assert_eq!(
            endpoint(&base, Scheme::Ws, &["tts", "websocket"]).unwrap().as_str(),
            "wss://api.example.com/tts/websocket"
        );
        let sim = Url::parse("ws://127.0.0.1:9/").unwrap();
        assert_eq!(endpoint(&sim, Scheme::Http, &["v1", "models"]).unwrap().as_str(), "http://127.0.0.1:9/v1/models");
        assert_eq!(
            endpoint(&Url::parse("ftp://x").unwrap(), Scheme::Ws, &[]),
            Err(OpenError::BadUrl("unsupported URL scheme \"ftp\"".into()))
        );
    }

    #[test]
    fn keys_are_sensitive_headers() {
        let v = secret_header("Token ", &SecretString::from("abc")).unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v.as_bytes(), b"Token abc");
        assert_eq!(secret_header("", &SecretString::from("a\nb")), Err(OpenError::InvalidKey));
    }

    #[tokio::test]
    async fn a_refused_upgrade_keeps_its_status_and_body() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("ws://{}/x", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let body = r#"{"err_msg":"no"}"#;
            let resp = format!("HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            s.write_all(resp.as_bytes()).await.unwrap();
        });
        let err = open(&url, HeaderMap::new(), Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(err.refusal(), Refusal::Unauthorized);
        assert!(matches!(err, OpenError::Refused { status: 401, body: Some(b) } if b == br#"{"err_msg":"no"}"#));
    }
}
