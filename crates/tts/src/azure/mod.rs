//! Azure AI Speech neural TTS over the Speech SDK's synthesis WebSocket (protocols/aws-azure.md
//! Z2.2), not the per-sentence REST call (Z2.1): one connection carries every sentence of a
//! stream, so only the first sentence pays for TCP + TLS + auth, and the protocol's messages
//! are read straight from the SDK's source.
//!
//! The key is the Speech resource key; the region comes from the base URL host
//! (`wss://{region}.tts.speech.microsoft.com`). The model name is not sent: neural voices are
//! chosen by voice name alone.

mod pump;
pub mod wire;

use crate::{socket, Tts, TtsError, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::sync::OnceLock;
use url::Url;
use wsclient::HeaderValue;

/// The stock voice: multilingual, natural, and on every region's neural roster.
pub const DEFAULT_VOICE: &str = "en-US-AvaMultilingualNeural";
/// The synthesis path of the current Speech SDK (older SDKs use `/cognitiveservices/websocket/v1`).
const SYNTHESIS_PATH: [&str; 4] = ["tts", "cognitiveservices", "websocket", "v1"];
const VOICES_PATH: &str = "/cognitiveservices/voices/list";

/// Streams text to Azure Speech and linear16 back. Holds no key: each call brings its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Azure;

/// `{base}/tts/cognitiveservices/websocket/v1`, http(s) mapped to ws(s); a base URL with a path
/// is used as the full endpoint.
fn synthesis_url(base: &Url) -> Result<Url, TtsError> {
    let path: &[&str] = if matches!(base.path(), "" | "/") { &SYNTHESIS_PATH } else { &[] };
    Ok(wsclient::endpoint(base, wsclient::Scheme::Ws, path)?)
}

/// `GET {base}/cognitiveservices/voices/list` over http(s): the cheapest call that proves a key.
fn voices_url(base: &Url) -> Result<Url, TtsError> {
    let mut url = wsclient::endpoint(base, wsclient::Scheme::Http, &[])?;
    url.set_path(VOICES_PATH);
    Ok(url)
}

fn key_header(key: &SecretString) -> Result<HeaderValue, TtsError> {
    Ok(wsclient::secret_header("", key)?)
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
    /// The voices list: free, and refused with 401 for a bad key or a key of another region.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        let resp = http()
            .get(voices_url(base_url)?)
            .header("Ocp-Apim-Subscription-Key", key_header(key)?)
            .timeout(socket::CONNECT_TIMEOUT)
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
        let connection_id = HeaderValue::from_str(&usp::new_id()).map_err(|e| TtsError::Connect(e.to_string()))?;
        let headers =
            wsclient::headers([("Ocp-Apim-Subscription-Key", key_header(req.key)?), ("X-ConnectionId", connection_id)]);
        let ws = wsclient::open(&synthesis_url(req.base_url)?, headers, socket::CONNECT_TIMEOUT).await?;
        Ok(pump::spawn(ws, pump::Opts { voice: voice.to_string(), output_format }))
    }
}

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
