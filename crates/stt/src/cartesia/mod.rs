//! Cartesia ink-whisper adapter (`/stt/websocket`, protocols/stt.md B5).
//!
//! Audio goes up as raw binary PCM; `finalize` flushes (acknowledged by `flush_done`), `close`
//! flushes and ends (acknowledged by `done`). Final transcripts are deltas carrying the seconds
//! of audio behind them, so usage is their sum once `done` arrives, else the local count.

pub(crate) mod wire;

use crate::wspump::{self, Opts};
use crate::{Stt, SttError, SttRequest, SttStream};
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use url::Url;

/// The API version this adapter speaks (`Cartesia-Version`).
pub const CARTESIA_VERSION: &str = "2025-04-16";

/// Streams linear16 audio to Cartesia STT. Holds no key.
#[derive(Debug, Clone)]
pub struct Cartesia {
    connect_timeout: Duration,
    close_wait: Duration,
}

impl Default for Cartesia {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(10), close_wait: Duration::from_secs(3) }
    }
}

impl Cartesia {
    pub fn new() -> Self {
        Self::default()
    }

    fn stt_url(&self, req: &SttRequest<'_>) -> Result<Url, SttError> {
        let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["stt", "websocket"])?;
        url.query_pairs_mut()
            .append_pair("model", req.model)
            .append_pair("encoding", "pcm_s16le")
            .append_pair("sample_rate", &req.sample_rate.to_string())
            .append_pair("language", req.language.split(['-', '_']).next().unwrap_or(req.language));
        Ok(url)
    }
}

/// Admin keys cannot call STT; refuse them before the network does.
fn usable(key: &SecretString) -> Result<(), SttError> {
    if key.expose_secret().starts_with("sk_car_admin_") {
        return Err(SttError::Unauthorized);
    }
    Ok(())
}

fn headers(key: &SecretString) -> Result<HeaderMap, SttError> {
    let mut h = HeaderMap::new();
    h.insert("x-api-key", wsclient::secret_header("", key)?);
    h.insert("cartesia-version", HeaderValue::from_static(CARTESIA_VERSION));
    Ok(h)
}

#[async_trait::async_trait]
impl Stt for Cartesia {
    /// `GET /voices?limit=1`: free and authenticated.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        usable(key)?;
        let mut url = wsclient::endpoint(base_url, wsclient::Scheme::Http, &["voices"])?;
        url.set_query(Some("limit=1"));
        wspump::check_get(url, headers(key)?).await
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        usable(req.key)?;
        if !(8000..=48000).contains(&req.sample_rate) {
            return Err(SttError::Connect(format!("Cartesia does not take {} Hz PCM", req.sample_rate)));
        }
        let url = self.stt_url(&req)?;
        let ws = wsclient::open(&url, headers(req.key)?, self.connect_timeout).await?;
        let opts = Opts {
            sample_rate: req.sample_rate,
            // Unused: Cartesia has no keep-alive message.
            keepalive_after: Duration::from_secs(3600),
            close_wait: self.close_wait,
        };
        Ok(wspump::spawn(ws, wspump::Strict::new(wire::CartesiaWire::new(req.sample_rate)), opts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_admin_keys() {
        let req = SttRequest::for_test("wss://api.cartesia.ai", "ink-whisper", 8000, "en-GB");
        assert_eq!(
            Cartesia::new().stt_url(&req).unwrap().as_str(),
            "wss://api.cartesia.ai/stt/websocket?model=ink-whisper&encoding=pcm_s16le&sample_rate=8000&language=en"
        );
        assert_eq!(usable(&SecretString::from("sk_car_admin_1")), Err(SttError::Unauthorized));
    }
}
