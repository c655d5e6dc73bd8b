//! Cartesia Sonic over the `/tts/websocket` API (protocols/tts.md C3): one context per stream,
//! raw `pcm_s16le` at the requested rate, word timestamps as [`crate::Alignment`].

pub(crate) mod wire;

use crate::socket::{self, pump};
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use wsclient::HeaderValue;

/// API version sent on every call (`Cartesia-Version` header and `cartesia_version` query).
pub const VERSION: &str = "2025-04-16";
/// Katie, the stock voice of Cartesia's own agent integrations.
pub const DEFAULT_VOICE: &str = "f786b574-daa5-4673-aa0c-cbe3e8534c02";
/// Raw output rates the API offers.
pub const SAMPLE_RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

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
    /// `GET /voices?limit=1`: authenticated, unbilled.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        refuse_admin_key(key)?;
        let mut url = wsclient::endpoint(base_url, wsclient::Scheme::Http, &["voices"])?;
        url.query_pairs_mut().append_pair("limit", "1");
        let headers = [("x-api-key", socket::secret_header("", key)?), version_header()];
        socket::check_get(&self.http, url, &headers).await
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        refuse_admin_key(req.key)?;
        let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["tts", "websocket"])?;
        url.query_pairs_mut().append_pair("cartesia_version", VERSION);
        let headers = wsclient::headers([("x-api-key", socket::secret_header("", req.key)?), version_header()]);
        let ws = socket::connect(&url, headers).await?;

        let voice = if req.voice.is_empty() { DEFAULT_VOICE } else { req.voice };
        let dialect = wire::CartesiaDialect::new(uuid::Uuid::new_v4().to_string(), req.model, voice, req.sample_rate);
        Ok(pump::spawn(ws, dialect))
    }
}
