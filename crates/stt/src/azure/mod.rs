//! Azure AI Speech real-time recognition over the Speech SDK's WebSocket protocol (protocols/
//! aws-azure.md Z1): `conversation` mode, continuous turns, linear16 audio behind a WAV header.
//!
//! The key is the Speech resource key; the region comes from the base URL host
//! (`wss://{region}.stt.speech.microsoft.com`). The model name is not sent: the rate table's
//! `real-time` is the service's only real-time tier.

mod pump;
pub(crate) mod wire;

use crate::{Stt, SttError, SttRequest, SttStream};
use secrecy::{ExposeSecret, SecretString};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};
use url::Url;

const AUDIO_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 64;
/// Recognition path for continuous, voice-agent style speech (the SDK's `conversation` mode).
const RECOGNITION_PATH: [&str; 5] = ["speech", "recognition", "conversation", "cognitiveservices", "v1"];
const SPEECH_HOST_SUFFIX: &str = ".stt.speech.microsoft.com";

/// Streams linear16 audio to Azure Speech and maps its results. Holds no key.
#[derive(Debug, Clone)]
pub struct Azure {
    connect_timeout: Duration,
    close_wait: Duration,
}

impl Default for Azure {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(10), close_wait: Duration::from_secs(3) }
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

    /// How long after end-of-audio on `Close` to wait for the service's `turn.end`.
    pub fn with_close_wait(mut self, wait: Duration) -> Self {
        self.close_wait = wait;
        self
    }
}

/// `{base}/speech/recognition/conversation/cognitiveservices/v1?language=…&format=detailed`;
/// a base URL that already has a path is used as the full endpoint.
fn recognition_url(base: &Url, language: &str) -> Result<Url, SttError> {
    let mut url = base.clone();
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => return Err(SttError::Connect(format!("unsupported URL scheme {other:?}"))),
    };
    url.set_scheme(scheme).map_err(|()| SttError::Connect("cannot use this base URL".into()))?;
    if matches!(url.path(), "" | "/") {
        url.path_segments_mut()
            .map_err(|()| SttError::Connect("base URL cannot have a path".into()))?
            .clear()
            .extend(RECOGNITION_PATH);
    }
    url.set_query(None);
    url.query_pairs_mut().append_pair("language", &locale(language)).append_pair("format", "detailed");
    Ok(url)
}

/// The token endpoint that proves a key: the region's `api.cognitive.microsoft.com` host for a
/// regional speech host, the same host otherwise (custom domains, simulators).
pub(crate) fn issue_token_url(base: &Url) -> Result<Url, SttError> {
    let host = base.host_str().ok_or_else(|| SttError::Connect("base URL has no host".into()))?;
    let mut url = match host.strip_suffix(SPEECH_HOST_SUFFIX) {
        Some(region) if !region.is_empty() => Url::parse(&format!("https://{region}.api.cognitive.microsoft.com"))
            .map_err(|e| SttError::Connect(format!("bad region in base URL: {e}")))?,
        _ => {
            let mut url = base.clone();
            let scheme = if matches!(base.scheme(), "wss" | "https") { "https" } else { "http" };
            url.set_scheme(scheme).map_err(|()| SttError::Connect("cannot use this base URL".into()))?;
            url
        }
    };
    url.set_path("/sts/v1.0/issueToken");
    url.set_query(None);
    Ok(url)
}

/// Azure wants a locale (`en-US`); sessions often carry a bare language (`en`).
fn locale(language: &str) -> String {
    let full = match language {
        "" | "en" => "en-US",
        "es" => "es-ES",
        "fr" => "fr-FR",
        "de" => "de-DE",
        "it" => "it-IT",
        "pt" => "pt-BR",
        "nl" => "nl-NL",
        "ja" => "ja-JP",
        "ko" => "ko-KR",
        "zh" => "zh-CN",
        "hi" => "hi-IN",
        other => other,
    };
    full.to_string()
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

fn key_header(key: &SecretString) -> Result<HeaderValue, SttError> {
    let mut value = HeaderValue::from_str(key.expose_secret())
        .map_err(|_| SttError::Connect("the API key is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

#[async_trait::async_trait]
impl Stt for Azure {
    fn name(&self) -> &'static str {
        "azure"
    }

    /// `POST /sts/v1.0/issueToken`: free, and refused with 401 for a bad key or wrong region.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        let url = issue_token_url(base_url)?;
        let resp = http()
            .post(url)
            .header("Ocp-Apim-Subscription-Key", key_header(key)?)
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .timeout(self.connect_timeout)
            .send()
            .await
            .map_err(
                |e| if e.is_timeout() { SttError::Timeout } else { SttError::Connect(e.without_url().to_string()) },
            )?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(SttError::Unauthorized),
            429 => Err(SttError::RateLimited),
            s => Err(SttError::Connect(format!("HTTP {s} from the token endpoint"))),
        }
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        if !(8000..=48000).contains(&req.sample_rate) {
            return Err(SttError::Connect(format!("sample rate {} Hz is not supported", req.sample_rate)));
        }
        let url = recognition_url(req.base_url, req.language)?;
        let mut request =
            url.as_str().into_client_request().map_err(|e| SttError::Connect(format!("bad request: {e}")))?;
        let headers = request.headers_mut();
        headers.insert("Ocp-Apim-Subscription-Key", key_header(req.key)?);
        let connection_id = HeaderValue::from_str(&usp::new_id()).map_err(|e| SttError::Connect(e.to_string()))?;
        headers.insert("X-ConnectionId", connection_id);

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
            close_wait: self.close_wait,
            // Ten seconds of audio: a finalized turn drains in well under that.
            hold_limit: req.sample_rate as usize * 2 * 10,
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

/// Small socket buffers, Nagle off (see the Deepgram adapter).
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

#[cfg(test)]
mod loopback_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_region_host() {
        let base = Url::parse("wss://westeurope.stt.speech.microsoft.com").unwrap();
        assert_eq!(
            recognition_url(&base, "en").unwrap().as_str(),
            "wss://westeurope.stt.speech.microsoft.com/speech/recognition/conversation/cognitiveservices/v1?language=en-US&format=detailed"
        );
        assert_eq!(
            issue_token_url(&base).unwrap().as_str(),
            "https://westeurope.api.cognitive.microsoft.com/sts/v1.0/issueToken"
        );
        let sim = Url::parse("ws://127.0.0.1:4000").unwrap();
        assert_eq!(
            recognition_url(&sim, "de-CH").unwrap().as_str(),
            "ws://127.0.0.1:4000/speech/recognition/conversation/cognitiveservices/v1?language=de-CH&format=detailed"
        );
        assert_eq!(issue_token_url(&sim).unwrap().as_str(), "http://127.0.0.1:4000/sts/v1.0/issueToken");
        let v2 = Url::parse("https://eastus.stt.speech.microsoft.com/stt/speech/universal/v2").unwrap();
        assert!(recognition_url(&v2, "en-US")
            .unwrap()
            .as_str()
            .starts_with("wss://eastus.stt.speech.microsoft.com/stt/speech/universal/v2?"));
        assert!(recognition_url(&Url::parse("ftp://x").unwrap(), "en").is_err());
    }
}
