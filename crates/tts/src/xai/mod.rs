//! xAI streaming TTS WebSocket adapter (protocols/llm-more.md E3.2): `wss://api.x.ai/v1/tts`
//! with `Authorization: Bearer`, `text.delta` in, base64 PCM `audio.delta` out, and one
//! `text.done` per flush answered by `audio.done`.
//!
//! The model (`grok-voice`) names the rate-table row only: the socket takes voice, language,
//! codec and rate in its query. Language is `auto` because an agent's text decides it.

mod pump;
pub(crate) mod wire;

use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};
use url::Url;

/// Rates asked for with `codec=pcm`; xAI sends s16le mono.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 22050, 24000, 44100];
/// xAI's documented default voice (also pipecat's).
pub const DEFAULT_VOICE: &str = "eve";

const TEXT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 128;

/// Streams text to xAI and PCM back. Holds no key: each call brings its own.
#[derive(Debug, Clone)]
pub struct Xai {
    connect_timeout: Duration,
}

impl Default for Xai {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(10) }
    }
}

impl Xai {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bound on TCP + TLS + WebSocket handshake and on the key check.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

#[async_trait::async_trait]
impl Tts for Xai {
    fn name(&self) -> &'static str {
        "xai"
    }

    /// `GET /v1/api-key` (protocols/llm-more.md E5): free, and it also reports a key that is
    /// valid but blocked or disabled, which a socket would only refuse later.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        let url = endpoint(base_url, &["v1", "api-key"], false)?;
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
            .map_err(|_| TtsError::Connect("the API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(self.connect_timeout)
            .build()
            .map_err(|e| TtsError::Connect(format!("HTTP client: {e}")))?;
        let resp = client
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .send()
            .await
            .map_err(|e| TtsError::Connect(e.without_url().to_string()))?;
        match resp.status().as_u16() {
            200 => {
                let info: KeyInfo = resp.json().await.map_err(|e| TtsError::Protocol(e.without_url().to_string()))?;
                if info.api_key_blocked || info.api_key_disabled || info.team_blocked {
                    return Err(TtsError::Unauthorized);
                }
                Ok(())
            }
            400 | 401 | 403 => Err(TtsError::Unauthorized),
            429 => Err(TtsError::RateLimited),
            s => Err(TtsError::Connect(format!("HTTP {s}"))),
        }
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        let mut url = endpoint(req.base_url, &["v1", "tts"], true)?;
        url.query_pairs_mut()
            .append_pair("voice", req.voice)
            .append_pair("language", "auto")
            .append_pair("codec", "pcm")
            .append_pair("sample_rate", &req.sample_rate.to_string())
            .append_pair("with_timestamps", "true");
        let mut request =
            url.as_str().into_client_request().map_err(|e| TtsError::Connect(format!("bad request: {e}")))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", req.key.expose_secret()))
            .map_err(|_| TtsError::Connect("the API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        request.headers_mut().insert("authorization", auth);

        let (ws, _) = tokio::time::timeout(
            self.connect_timeout,
            tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true),
        )
        .await
        .map_err(|_| TtsError::Connect("timed out".into()))?
        .map_err(handshake_error)?;

        let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(pump::run(ws, text_rx, events_tx, req.sample_rate));
        Ok(TtsStream { text: text_tx, events: events_rx })
    }
}

/// The fields of `GET /v1/api-key` that make a valid key unusable.
#[derive(serde::Deserialize)]
struct KeyInfo {
    #[serde(default)]
    api_key_blocked: bool,
    #[serde(default)]
    api_key_disabled: bool,
    #[serde(default)]
    team_blocked: bool,
}

/// `{base}/{segments}` with the scheme mapped to ws(s) for sockets or http(s) for REST.
fn endpoint(base: &Url, segments: &[&str], websocket: bool) -> Result<Url, TtsError> {
    let secure = match base.scheme() {
        "http" | "ws" => false,
        "https" | "wss" => true,
        other => return Err(TtsError::Connect(format!("unsupported URL scheme {other:?}"))),
    };
    let scheme = match (websocket, secure) {
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
        .extend(segments);
    url.set_query(None);
    Ok(url)
}

/// xAI answers a bad key with 400 "Incorrect API key provided" rather than 401.
fn handshake_error(e: tungstenite::Error) -> TtsError {
    match e {
        tungstenite::Error::Http(resp) => {
            let body = resp.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            match resp.status().as_u16() {
                401 | 403 => TtsError::Unauthorized,
                400 if body.to_ascii_lowercase().contains("api key") => TtsError::Unauthorized,
                429 => TtsError::RateLimited,
                s => TtsError::Connect(format!("HTTP {s}")),
            }
        }
        other => TtsError::Connect(other.to_string()),
    }
}

/// Small socket buffers and no write buffering, as for ElevenLabs.
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_map_schemes() {
        let base = Url::parse("wss://api.x.ai").unwrap();
        assert_eq!(endpoint(&base, &["v1", "tts"], true).unwrap().as_str(), "wss://api.x.ai/v1/tts");
        assert_eq!(endpoint(&base, &["v1", "api-key"], false).unwrap().as_str(), "https://api.x.ai/v1/api-key");
        let sim = Url::parse("ws://127.0.0.1:9/").unwrap();
        assert_eq!(endpoint(&sim, &["v1", "api-key"], false).unwrap().as_str(), "http://127.0.0.1:9/v1/api-key");
        assert!(endpoint(&Url::parse("ftp://x").unwrap(), &["v1"], true).is_err());
    }
}

#[cfg(test)]
mod loopback_tests;
