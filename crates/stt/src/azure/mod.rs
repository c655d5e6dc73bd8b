//! Azure AI Speech real-time recognition over the Speech SDK's WebSocket protocol (protocols/
//! aws-azure.md Z1): `conversation` mode, continuous turns, linear16 audio behind a WAV header.
//!
//! The key is the Speech resource key; the region comes from the base URL host
//! (`wss://{region}.stt.speech.microsoft.com`). The model name is not sent: the rate table's
//! `real-time` is the service's only real-time tier.

mod dialect;
pub(crate) mod wire;

use crate::wspump;
use crate::{Stt, SttError, SttRequest, SttStream};
use secrecy::SecretString;
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;
use wsclient::HeaderValue;
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
}

/// `{base}/speech/recognition/conversation/cognitiveservices/v1?language=…&format=detailed`;
/// a base URL that already has a path is used as the full endpoint.
fn recognition_url(base: &Url, language: &str) -> Result<Url, SttError> {
    let path: &[&str] = if matches!(base.path(), "" | "/") { &RECOGNITION_PATH } else { &[] };
    let mut url = wsclient::endpoint(base, wsclient::Scheme::Ws, path)?;
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

#[async_trait::async_trait]
impl Stt for Azure {
    /// `POST /sts/v1.0/issueToken`: free, and refused with 401 for a bad key or wrong region.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        let url = issue_token_url(base_url)?;
        let resp = http()
            .post(url)
            .header("Ocp-Apim-Subscription-Key", wsclient::secret_header("", key)?)
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
        let connection_id = HeaderValue::from_str(&usp::new_id()).map_err(|e| SttError::Connect(e.to_string()))?;
        let headers = wsclient::headers([
            ("Ocp-Apim-Subscription-Key", wsclient::secret_header("", req.key)?),
            ("X-ConnectionId", connection_id),
        ]);
        let ws = wsclient::open(&url, headers, self.connect_timeout).await?;
        let opts = wspump::Opts {
            sample_rate: req.sample_rate,
            // Unused: the caller's keep-alives become pings; the service needs none of its own.
            keepalive_after: Duration::from_secs(3600),
            close_wait: self.close_wait,
        };
        // Ten seconds of audio held: a finalized turn drains in well under that.
        let hold_limit = req.sample_rate as usize * 2 * 10;
        Ok(wspump::spawn(ws, dialect::Recognition::new(req.sample_rate, hold_limit), opts))
    }
}

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
