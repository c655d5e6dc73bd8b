//! Deepgram live streaming v1 adapter (`/v1/listen`, protocols/stt.md B1); `flux-…` models go
//! to the Flux v2 adapter in [`flux`].

pub(crate) mod flux;
mod pump;
pub(crate) mod wire;

use crate::{Stt, SttError, SttRequest, SttStream};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};
use url::Url;

/// Audio queue depth: 64 × 20 ms ≈ 1.3 s of slack before the caller feels backpressure.
const AUDIO_QUEUE: usize = 64;
/// Event queue depth: a few results per second of speech.
const EVENT_QUEUE: usize = 64;

/// Streams linear16 audio to Deepgram and maps its results. Holds no key: each call brings its own.
#[derive(Debug, Clone)]
pub struct Deepgram {
    connect_timeout: Duration,
    keepalive_after: Duration,
    close_wait: Duration,
    endpointing_ms: u32,
    utterance_end_ms: u32,
}

impl Default for Deepgram {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            // Deepgram closes after 10 s without audio or KeepAlive; its docs ask for 3–5 s.
            keepalive_after: Duration::from_secs(4),
            close_wait: Duration::from_secs(3),
            endpointing_ms: 300,
            utterance_end_ms: 1000,
        }
    }
}

impl Deepgram {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bound on TCP + TLS + WebSocket handshake; a hung provider must not stall a call.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Idle time (no audio) before the adapter sends `KeepAlive` itself.
    pub fn with_keepalive_after(mut self, idle: Duration) -> Self {
        self.keepalive_after = idle;
        self
    }

    /// How long after `Close` to wait for the provider's `Metadata` and close frame.
    pub fn with_close_wait(mut self, wait: Duration) -> Self {
        self.close_wait = wait;
        self
    }

    /// Silence (ms) after which Deepgram marks `speech_final`; the turn detector builds on it.
    pub fn with_endpointing_ms(mut self, ms: u32) -> Self {
        self.endpointing_ms = ms;
        self
    }

    fn listen_url(&self, req: &SttRequest<'_>) -> Result<Url, SttError> {
        let mut url = req.base_url.clone();
        let scheme = match url.scheme() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            other => return Err(SttError::Connect(format!("unsupported URL scheme {other:?}"))),
        };
        url.set_scheme(scheme).map_err(|()| SttError::Connect("cannot use this base URL".into()))?;
        url.path_segments_mut()
            .map_err(|()| SttError::Connect("base URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(["v1", "listen"]);
        url.set_query(None);
        url.query_pairs_mut()
            .append_pair("model", req.model)
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &req.sample_rate.to_string())
            .append_pair("channels", "1")
            .append_pair("language", req.language)
            .append_pair("interim_results", "true")
            .append_pair("endpointing", &self.endpointing_ms.to_string())
            .append_pair("utterance_end_ms", &self.utterance_end_ms.to_string())
            .append_pair("vad_events", "true")
            .append_pair("punctuate", "true");
        Ok(url)
    }
}

#[async_trait::async_trait]
impl Stt for Deepgram {
    fn name(&self) -> &'static str {
        "deepgram"
    }

    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        crate::check_by_connecting(self, base_url, key, "nova-3").await
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        if flux::is_flux(req.model) {
            return flux::connect(self, &req).await;
        }
        if req.sample_rate == 0 {
            return Err(SttError::Connect("sample rate must be positive".into()));
        }
        let url = self.listen_url(&req)?;
        let mut request =
            url.as_str().into_client_request().map_err(|e| SttError::Connect(format!("bad request: {e}")))?;
        let mut auth = HeaderValue::try_from(format!("Token {}", req.key.expose_secret()))
            .map_err(|_| SttError::Connect("the API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        request.headers_mut().insert("authorization", auth);

        let (ws, _) = tokio::time::timeout(
            self.connect_timeout,
            tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true),
        )
        .await
        .map_err(|_| SttError::Timeout)?
        .map_err(handshake_error)?;

        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let opts = pump::Opts {
            sample_rate: req.sample_rate,
            keepalive_after: self.keepalive_after,
            close_wait: self.close_wait,
        };
        tokio::spawn(pump::run(ws, audio_rx, events_tx, opts));
        Ok(SttStream { audio: audio_tx, events: events_rx })
    }
}

fn handshake_error(e: tungstenite::Error) -> SttError {
    match e {
        tungstenite::Error::Http(resp) => match resp.status().as_u16() {
            401 | 403 => SttError::Unauthorized,
            429 => SttError::RateLimited,
            s => SttError::Connect(format!("HTTP {s} at upgrade")),
        },
        other => SttError::Connect(other.to_string()),
    }
}

/// Small socket buffers: tungstenite's default 128 KiB read buffer is zero-filled on every read
/// and held per connection, which dominated CPU and memory per call. Nagle off: every frame is
/// latency-sensitive.
fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

#[cfg(test)]
mod loopback_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn req<'a>(base: &'a Url, key: &'a SecretString) -> SttRequest<'a> {
        SttRequest { base_url: base, key, model: "nova-3", sample_rate: 16000, language: "en-US" }
    }

    #[test]
    fn url_maps_scheme_and_sets_query() {
        let key = SecretString::from("k");
        let base = Url::parse("https://api.deepgram.com").unwrap();
        let url = Deepgram::new().listen_url(&req(&base, &key)).unwrap();
        assert_eq!(
            url.as_str(),
            "wss://api.deepgram.com/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&channels=1&language=en-US&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true&punctuate=true"
        );
        let base = Url::parse("ws://127.0.0.1:1234/").unwrap();
        let url = Deepgram::new().listen_url(&req(&base, &key)).unwrap();
        assert!(url.as_str().starts_with("ws://127.0.0.1:1234/v1/listen?model=nova-3&"));
        let base = Url::parse("ftp://x").unwrap();
        assert!(matches!(Deepgram::new().listen_url(&req(&base, &key)), Err(SttError::Connect(_))));
    }
}
