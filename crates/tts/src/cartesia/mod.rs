//! Cartesia Sonic over the `/tts/websocket` API (protocols/tts.md C3): one context per stream,
//! raw `pcm_s16le` at the requested rate, word timestamps as [`crate::Alignment`].

pub(crate) mod wire;

use crate::socket::{self, pump};
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use url::Url;

/// API version sent on every call (`Cartesia-Version` header and `cartesia_version` query).
pub const VERSION: &str = "2025-04-16";
/// Katie, the stock voice of Cartesia's own agent integrations.
pub const DEFAULT_VOICE: &str = "f786b574-daa5-4673-aa0c-cbe3e8534c02";
/// Raw output rates the API offers.
pub const SAMPLE_RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

const TEXT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 128;

/// Streams text to Cartesia and PCM back. Holds no key: each call brings its own.
#[derive(Debug, Clone, Default)]
pub struct Cartesia {
    http: reqwest::Client,
}

impl Cartesia {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Admin keys manage an organisation and are refused by the TTS API; say so before dialling.
fn refuse_admin_key(key: &SecretString) -> Result<(), TtsError> {
    if key.expose_secret().starts_with("sk_car_admin_") {
        return Err(TtsError::Unauthorized);
    }
    Ok(())
}

fn version_header() -> (&'static str, HeaderValue) {
    ("cartesia-version", HeaderValue::from_static(VERSION))
}

#[async_trait::async_trait]
impl Tts for Cartesia {
    fn name(&self) -> &'static str {
        "cartesia"
    }

    /// `GET /voices?limit=1`: authenticated, unbilled.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        refuse_admin_key(key)?;
        let mut url = socket::endpoint(base_url, false, &["voices"])?;
        url.query_pairs_mut().append_pair("limit", "1");
        let headers = [("x-api-key", socket::secret_header("", key)?), version_header()];
        socket::check_get(&self.http, url, &headers).await
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        refuse_admin_key(req.key)?;
        let mut url = socket::endpoint(req.base_url, true, &["tts", "websocket"])?;
        url.query_pairs_mut().append_pair("cartesia_version", VERSION);
        let ws =
            socket::connect(&url, vec![("x-api-key", socket::secret_header("", req.key)?), version_header()]).await?;

        let voice = if req.voice.is_empty() { DEFAULT_VOICE } else { req.voice };
        let dialect = wire::CartesiaDialect::new(uuid::Uuid::new_v4().to_string(), req.model, voice, req.sample_rate);
        let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(pump::run(ws, dialect, text_rx, events_tx));
        Ok(TtsStream { text: text_tx, events: events_rx })
    }
}

#[cfg(test)]
mod loopback_tests;
