//! Amazon Polly `SynthesizeSpeech` adapter (protocols/aws-azure.md A3.1): one SigV4-signed
//! `POST /v1/speech` for the first phrase, then one per sentence, raw PCM streamed back as it
//! arrives.
//!
//! The key is `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`; the region comes from the base
//! URL host (`polly.{region}.amazonaws.com`), or for a simulator URL from its `?region=`
//! parameter, else `us-east-1`. The model is Polly's `Engine` (`neural`, `standard`,
//! `generative`, `long-form`). Polly's PCM comes at 8000 or 16000 Hz only: those rates are asked
//! for directly, and 22050/24000/44100/48000 are produced by resampling Polly's 16 kHz (other
//! rates are [`TtsError::UnsupportedSampleRate`]). Usage is Polly's billed characters
//! (`x-amzn-RequestCharacters`), counted locally when the header is missing.

mod pump;

use crate::{Tts, TtsError, TtsRequest, TtsStream};
use aws::{AmzDate, Credentials, Signer};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

/// Polly's stock US English voice (neural, standard, generative and long-form).
pub const DEFAULT_VOICE: &str = "Joanna";
/// PCM rates Polly produces itself.
const NATIVE_RATES: [u32; 2] = [8000, 16000];
/// Rates served by resampling 16 kHz.
const RESAMPLED_RATES: [u32; 4] = [22050, 24000, 44100, 48000];

const TEXT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 128;

/// Synthesizes sentence by sentence with Polly. Holds no key: each call brings its own.
#[derive(Debug, Clone)]
pub struct Polly {
    request_timeout: Duration,
}

impl Default for Polly {
    fn default() -> Self {
        Self { request_timeout: Duration::from_secs(20) }
    }
}

impl Polly {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bound on one `SynthesizeSpeech` call, body included.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// One pooled client for every Polly call (connection and TLS reuse across sentences).
fn http() -> Result<&'static reqwest::Client, TtsError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| TtsError::Connect(format!("HTTP client: {e}")))
}

fn credentials(key: &SecretString) -> Result<Credentials, TtsError> {
    // A malformed key can never be accepted: the same answer as a refused one.
    Credentials::parse(key.expose_secret()).map_err(|_| TtsError::Unauthorized)
}

/// `{base}/v1/{leaf}` over http(s), without the base's query (which may hold `region`).
fn endpoint(base: &Url, leaf: &str) -> Result<Url, TtsError> {
    let mut url = base.clone();
    let scheme = match base.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => return Err(TtsError::Connect(format!("unsupported URL scheme {other:?}"))),
    };
    url.set_scheme(scheme).map_err(|()| TtsError::Connect("cannot use this base URL".into()))?;
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| TtsError::Connect("base URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(["v1", leaf]);
    Ok(url)
}

/// A signed request's headers, auth values marked sensitive.
fn signed_headers(
    signer: &Signer,
    method: &str,
    url: &Url,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HeaderMap, TtsError> {
    let extra: Vec<(&str, &str)> = content_type.map(|ct| ("content-type", ct)).into_iter().collect();
    let signed = signer.sign(method, url, &extra, body, AmzDate::now());
    let mut headers = HeaderMap::new();
    for (name, value) in extra.iter().copied().chain(signed.pairs()) {
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| TtsError::Connect("the AWS key is not a valid header value".into()))?;
        v.set_sensitive(matches!(name, "authorization" | "x-amz-security-token"));
        headers.insert(HeaderName::from_static(name), v);
    }
    Ok(headers)
}

/// A non-2xx Polly answer → typed error. The code comes from `x-amzn-ErrorType` (minus its
/// `:…` suffix) or the body's `__type`/`code` (minus any `ns#` prefix), the text from
/// `message`/`Message`.
async fn error_from(resp: reqwest::Response) -> TtsError {
    let status = resp.status().as_u16();
    let error_type = resp.headers().get("x-amzn-ErrorType").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = resp.bytes().await.unwrap_or_default();
    error_of(status, error_type.as_deref(), &body)
}

/// [`error_from`] once the answer is read: kept apart from the HTTP client so the `tts_wire`
/// fuzz target can feed it arbitrary bodies.
pub(crate) fn error_of(status: u16, error_type: Option<&str>, body: &[u8]) -> TtsError {
    let header_code = error_type.map(|v| v.split(':').next().unwrap_or(v).to_string());
    let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let body_code = body.get("__type").or_else(|| body.get("code")).and_then(|v| v.as_str());
    let code = header_code
        .or_else(|| body_code.map(|c| c.rsplit('#').next().unwrap_or(c).to_string()))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = body.get("message").or_else(|| body.get("Message")).and_then(|v| v.as_str()).unwrap_or_default();
    match (status, code.as_str()) {
        (401 | 403, _) | (_, "UnrecognizedClientException" | "InvalidSignatureException" | "AccessDeniedException") => {
            TtsError::Unauthorized
        }
        (429, _) | (_, "ThrottlingException") => TtsError::RateLimited,
        _ if message.is_empty() => TtsError::Provider { message: code },
        _ => TtsError::Provider { message: format!("{code}: {message}") },
    }
}

fn send_error(e: reqwest::Error) -> TtsError {
    // reqwest's Display may name the URL only; our URLs never carry the key.
    if e.is_timeout() {
        TtsError::Connect("timed out talking to Polly".into())
    } else {
        TtsError::Connect(e.without_url().to_string())
    }
}

#[async_trait::async_trait]
impl Tts for Polly {
    /// `DescribeVoices` (`GET /v1/voices?LanguageCode=en-US`): free, and it proves Polly
    /// permission too, which STS `GetCallerIdentity` would not.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        let signer = Signer::new(credentials(key)?, aws::region_from_url(base_url), "polly");
        let mut url = endpoint(base_url, "voices")?;
        url.query_pairs_mut().append_pair("LanguageCode", "en-US");
        let headers = signed_headers(&signer, "GET", &url, None, b"")?;
        let resp = http()?.get(url).headers(headers).timeout(self.request_timeout).send().await.map_err(send_error)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_from(resp).await)
        }
    }

    /// Nothing goes over the network until the first sentence: Polly is request/response, so a
    /// refused key shows up as the stream's [`crate::TtsEvent::Error`].
    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        let polly_rate = if NATIVE_RATES.contains(&req.sample_rate) {
            req.sample_rate
        } else if RESAMPLED_RATES.contains(&req.sample_rate) {
            16000
        } else {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        };
        let resampler = if polly_rate == req.sample_rate {
            None
        } else {
            Some(media::Resampler::new(polly_rate, req.sample_rate).map_err(|e| TtsError::Connect(e.to_string()))?)
        };
        let signer = Signer::new(credentials(req.key)?, aws::region_from_url(req.base_url), "polly");
        let voice = if req.voice.trim().is_empty() { DEFAULT_VOICE } else { req.voice.trim() };
        let job = pump::Job {
            http: http()?.clone(),
            url: endpoint(req.base_url, "speech")?,
            signer,
            engine: req.model.to_string(),
            voice: voice.to_string(),
            polly_rate,
            resampler,
            request_timeout: self.request_timeout,
        };
        let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(pump::run(job, text_rx, events_tx));
        Ok(TtsStream { text: text_tx, events: events_rx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_drop_the_region_query_and_keep_tls() {
        let base = Url::parse("http://127.0.0.1:9/?region=eu-west-1").unwrap();
        assert_eq!(endpoint(&base, "speech").unwrap().as_str(), "http://127.0.0.1:9/v1/speech");
        assert_eq!(aws::region_from_url(&base), "eu-west-1");
        let base = Url::parse("https://polly.us-west-2.amazonaws.com").unwrap();
        assert_eq!(endpoint(&base, "voices").unwrap().as_str(), "https://polly.us-west-2.amazonaws.com/v1/voices");
        assert!(endpoint(&Url::parse("ftp://x").unwrap(), "speech").is_err());
    }

    #[test]
    fn auth_headers_are_sensitive() {
        let signer = Signer::new(Credentials::new("AKID", "secret", Some("tok".into())), "us-east-1", "polly");
        let url = Url::parse("https://polly.us-east-1.amazonaws.com/v1/speech").unwrap();
        let h = signed_headers(&signer, "POST", &url, Some("application/json"), b"{}").unwrap();
        assert!(h["authorization"].is_sensitive() && h["x-amz-security-token"].is_sensitive());
        assert!(!h["x-amz-date"].is_sensitive());
        assert_eq!(h["content-type"], "application/json");
    }
}
