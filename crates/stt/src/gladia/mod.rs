//! Gladia live v2 adapter (protocols/stt.md B7).
//!
//! Two steps: `POST /v2/live` with `x-gladia-key` creates a session and returns its WebSocket
//! URL (the token is in the URL, so the socket needs no header); then binary PCM goes up and
//! `stop_recording` ends it. The key is refused at the HTTP step. Usage is the
//! `post_final_transcript` billing time, else counted locally.

pub(crate) mod wire;

use crate::wspump::{self, Opts};
use crate::{Stt, SttError, SttRequest, SttStream};
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use url::Url;

/// The PCM rates Gladia live accepts.
const SAMPLE_RATES: [u32; 5] = [8000, 16000, 32000, 44100, 48000];

/// Streams linear16 audio to Gladia live. Holds no key.
#[derive(Debug, Clone)]
pub struct Gladia {
    connect_timeout: Duration,
    close_wait: Duration,
    endpointing_s: f64,
}

impl Default for Gladia {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            // Post-processing runs after stop_recording before the final metadata arrives.
            close_wait: Duration::from_secs(5),
            // Silence that ends an utterance; like Deepgram's 300 ms endpointing.
            endpointing_s: 0.3,
        }
    }
}

#[derive(Debug, Deserialize)]
struct InitResponse {
    url: String,
}

impl Gladia {
    pub fn new() -> Self {
        Self::default()
    }

    fn init_body(&self, req: &SttRequest<'_>) -> serde_json::Value {
        let language = req.language.split(['-', '_']).next().unwrap_or(req.language);
        json!({
            "encoding": "wav/pcm",
            "bit_depth": 16,
            "sample_rate": req.sample_rate,
            "channels": 1,
            "model": req.model,
            "endpointing": self.endpointing_s,
            "maximum_duration_without_endpointing": 30,
            "language_config": {"languages": [language], "code_switching": false},
            "messages_config": {
                "receive_partial_transcripts": true,
                "receive_final_transcripts": true,
                "receive_speech_events": true,
                "receive_pre_processing_events": false,
                "receive_realtime_processing_events": false,
                "receive_post_processing_events": true,
                "receive_acknowledgments": false,
                "receive_errors": true,
                "receive_lifecycle_events": true,
            },
        })
    }

    /// `POST /v2/live` → the session's WebSocket URL.
    async fn init(&self, req: &SttRequest<'_>) -> Result<Url, SttError> {
        let url = wsclient::endpoint(req.base_url, wsclient::Scheme::Http, &["v2", "live"])?;
        let resp =
            wspump::http_client()?.post(url).headers(auth(req.key)?).json(&self.init_body(req)).send().await.map_err(
                |e| if e.is_timeout() { SttError::Timeout } else { SttError::Connect(e.without_url().to_string()) },
            )?;
        let status = resp.status();
        if !status.is_success() {
            return Err(wspump::status_error(status.as_u16()));
        }
        let body: InitResponse = resp
            .json()
            .await
            .map_err(|e| SttError::Protocol(format!("bad Gladia session response: {}", e.without_url())))?;
        let ws_url = Url::parse(&body.url).map_err(|e| SttError::Protocol(format!("bad Gladia session URL: {e}")))?;
        match ws_url.scheme() {
            "ws" | "wss" => Ok(ws_url),
            other => Err(SttError::Protocol(format!("Gladia session URL has scheme {other:?}"))),
        }
    }
}

fn auth(key: &SecretString) -> Result<HeaderMap, SttError> {
    let mut h = HeaderMap::new();
    h.insert("x-gladia-key", wsclient::secret_header("", key)?);
    Ok(h)
}

#[async_trait::async_trait]
impl Stt for Gladia {
    /// `GET /v2/pre-recorded?limit=1`: lists past jobs, opens no session and bills nothing.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        let mut url = wsclient::endpoint(base_url, wsclient::Scheme::Http, &["v2", "pre-recorded"])?;
        url.set_query(Some("limit=1"));
        wspump::check_get(url, auth(key)?).await
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(SttError::Connect(format!("Gladia does not take {} Hz PCM", req.sample_rate)));
        }
        let open = async {
            let ws_url = self.init(&req).await?;
            // The session token is in the URL: no header.
            Ok::<_, SttError>(wsclient::open(&ws_url, HeaderMap::new(), self.connect_timeout).await?)
        };
        let ws = tokio::time::timeout(self.connect_timeout, open).await.map_err(|_| SttError::Timeout)??;
        let opts = Opts {
            sample_rate: req.sample_rate,
            // Unused: Gladia has no keep-alive message.
            keepalive_after: Duration::from_secs(3600),
            close_wait: self.close_wait,
        };
        Ok(wspump::spawn(ws, wspump::Strict::new(wire::GladiaWire::default()), opts))
    }
}
