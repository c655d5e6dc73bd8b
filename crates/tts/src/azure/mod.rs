//! Azure AI Speech neural TTS over the Speech SDK's synthesis WebSocket (protocols/aws-azure.md
//! Z2.2), not the per-sentence REST call (Z2.1): one connection carries every sentence of a
//! stream, so only the first sentence pays for TCP + TLS + auth, and the protocol's messages
//! are read straight from the SDK's source.
//!
//! The key is the Speech resource key; the region comes from the base URL host
//! (`wss://{region}.tts.speech.microsoft.com`). The model name is not sent: neural voices are
//! chosen by voice name alone.

mod pump;
pub(crate) mod wire;

use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::{ExposeSecret, SecretString};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};
use url::Url;

/// The stock voice: multilingual, natural, and on every region's neural roster.
pub const DEFAULT_VOICE: &str = "en-US-AvaMultilingualNeural";
/// The synthesis path of the current Speech SDK (older SDKs use `/cognitiveservices/websocket/v1`).
const SYNTHESIS_PATH: [&str; 4] = ["tts", "cognitiveservices", "websocket", "v1"];
const VOICES_PATH: &str = "/cognitiveservices/voices/list";

const TEXT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 128;

/// Streams text to Azure Speech and linear16 back. Holds no key: each call brings its own.
#[derive(Debug, Clone)]
pub struct Azure {
    connect_timeout: Duration,
}

impl Default for Azure {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(10) }
    }
}

impl Azure {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bound on TCP + TLS + WebSocket handshake, and on the key check.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// `{base}/tts/cognitiveservices/websocket/v1`, http(s) mapped to ws(s); a base URL with a path
/// is used as the full endpoint.
fn synthesis_url(base: &Url) -> Result<Url, TtsError> {
    let mut url = with_scheme(base, "ws", "wss")?;
    if matches!(url.path(), "" | "/") {
        url.path_segments_mut()
            .map_err(|()| TtsError::Connect("base URL cannot have a path".into()))?
            .clear()
            .extend(SYNTHESIS_PATH);
    }
    url.set_query(None);
    Ok(url)
}

/// `GET {base}/cognitiveservices/voices/list` over http(s): the cheapest call that proves a key.
fn voices_url(base: &Url) -> Result<Url, TtsError> {
    let mut url = with_scheme(base, "http", "https")?;
    url.set_path(VOICES_PATH);
    url.set_query(None);
    Ok(url)
}

fn with_scheme(base: &Url, plain: &str, tls: &str) -> Result<Url, TtsError> {
    let scheme = match base.scheme() {
        "ws" | "http" => plain,
        "wss" | "https" => tls,
        other => return Err(TtsError::Connect(format!("unsupported URL scheme {other:?}"))),
    };
    let mut url = base.clone();
    url.set_scheme(scheme).map_err(|()| TtsError::Connect("cannot use this base URL".into()))?;
    Ok(url)
}

fn key_header(key: &SecretString) -> Result<HeaderValue, TtsError> {
    let mut value = HeaderValue::from_str(key.expose_secret())
        .map_err(|_| TtsError::Connect("the API key is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

fn status_error(status: u16) -> TtsError {
    match status {
        401 | 403 => TtsError::Unauthorized,
        429 => TtsError::RateLimited,
        s => TtsError::Connect(format!("HTTP {s}")),
    }
}

#[async_trait::async_trait]
impl Tts for Azure {
    fn name(&self) -> &'static str {
        "azure"
    }

    /// The voices list: free, and refused with 401 for a bad key or a key of another region.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        let resp = http()
            .get(voices_url(base_url)?)
            .header("Ocp-Apim-Subscription-Key", key_header(key)?)
            .timeout(self.connect_timeout)
            .send()
            .await
            .map_err(|e| TtsError::Connect(e.without_url().to_string()))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            s => Err(status_error(s)),
        }
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        let output_format =
            wire::output_format(req.sample_rate).ok_or(TtsError::UnsupportedSampleRate(req.sample_rate))?;
        let voice = if req.voice.trim().is_empty() { DEFAULT_VOICE } else { req.voice };
        let mut request = synthesis_url(req.base_url)?
            .as_str()
            .into_client_request()
            .map_err(|e| TtsError::Connect(format!("bad request: {e}")))?;
        let headers = request.headers_mut();
        headers.insert("Ocp-Apim-Subscription-Key", key_header(req.key)?);
        let connection_id = HeaderValue::from_str(&usp::new_id()).map_err(|e| TtsError::Connect(e.to_string()))?;
        headers.insert("X-ConnectionId", connection_id);

        let (ws, _) = tokio::time::timeout(
            self.connect_timeout,
            tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true),
        )
        .await
        .map_err(|_| TtsError::Connect("timed out".into()))?
        .map_err(|e| match e {
            tungstenite::Error::Http(resp) => status_error(resp.status().as_u16()),
            other => TtsError::Connect(other.to_string()),
        })?;

        let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let opts = pump::Opts { voice: voice.to_string(), output_format };
        tokio::spawn(pump::run(ws, text_rx, events_tx, opts));
        Ok(TtsStream { text: text_tx, events: events_rx })
    }
}

/// Small socket buffers, Nagle off (see the ElevenLabs adapter).
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

#[cfg(test)]
mod loopback_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_schemes_and_paths() {
        let base = Url::parse("https://eastus.tts.speech.microsoft.com").unwrap();
        assert_eq!(
            synthesis_url(&base).unwrap().as_str(),
            "wss://eastus.tts.speech.microsoft.com/tts/cognitiveservices/websocket/v1"
        );
        assert_eq!(
            voices_url(&base).unwrap().as_str(),
            "https://eastus.tts.speech.microsoft.com/cognitiveservices/voices/list"
        );
        let sim = Url::parse("ws://127.0.0.1:9/").unwrap();
        assert_eq!(synthesis_url(&sim).unwrap().as_str(), "ws://127.0.0.1:9/tts/cognitiveservices/websocket/v1");
        assert_eq!(voices_url(&sim).unwrap().as_str(), "http://127.0.0.1:9/cognitiveservices/voices/list");
        let old = Url::parse("wss://westus.tts.speech.microsoft.com/cognitiveservices/websocket/v1").unwrap();
        assert_eq!(synthesis_url(&old).unwrap(), old);
        assert!(synthesis_url(&Url::parse("ftp://x").unwrap()).is_err());
    }
}
