//! OpenAI Chat Completions streaming adapter (protocols/llm.md D1); any OpenAI-compatible
//! endpoint works through `base_url`.

mod decoder;
mod pump;
mod tool_calls;
mod wire;

#[cfg(test)]
mod loopback_tests;

use crate::error::describe_transport;
use crate::estimate::estimate_input_tokens;
use crate::{Llm, LlmError, LlmEvent, LlmRequest};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tracing::Instrument;
use url::Url;

/// Events buffered between the reader task and the consumer; a slow consumer back-pressures
/// the HTTP body instead of growing memory.
const EVENTS: usize = 64;

/// Stateless adapter over one shared connection pool; key and URL come with each request.
pub struct OpenAi {
    http: reqwest::Client,
}

impl OpenAi {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

#[async_trait::async_trait]
impl Llm for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let url = endpoint(req.base_url)?;
        let mut auth = HeaderValue::try_from(format!("Bearer {}", req.key.expose_secret()))
            .map_err(|_| {
                LlmError::BadRequest(
                    "the API key has characters not allowed in an HTTP header".into(),
                )
            })?;
        auth.set_sensitive(true);
        let body = wire::ChatRequest {
            model: req.model,
            messages: req.messages,
            stream: true,
            stream_options: wire::StreamOptions {
                include_usage: true,
            },
            max_completion_tokens: req.max_tokens,
        };
        let resp = self
            .http
            .post(url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "text/event-stream")
            .json(&body)
            .send()
            .await
            .map_err(|e| LlmError::Http(describe_transport(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after_ms = retry_after_ms(resp.headers());
            // An unreadable error body still leaves the status to go by.
            let bytes = resp.bytes().await.unwrap_or_default();
            let env: wire::ErrorEnvelope = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(LlmError::from_status(
                status.as_u16(),
                retry_after_ms,
                env.message(),
            ));
        }
        let (tx, rx) = mpsc::channel(EVENTS);
        let decoder = decoder::Decoder::new(estimate_input_tokens(req.messages));
        tokio::spawn(pump::run(resp.bytes_stream(), tx, decoder).in_current_span());
        Ok(rx)
    }
}

/// `{base_url}/chat/completions`, whether or not `base_url` ends with '/'.
fn endpoint(base: &Url) -> Result<Url, LlmError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| LlmError::BadRequest("the provider base URL cannot take a path".into()))?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    Ok(url)
}

/// `retry-after-ms` (preferred), else `retry-after` in seconds. The HTTP-date form is ignored:
/// OpenAI sends seconds, and a missing hint only means the caller's own backoff applies.
fn retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| ms.ceil() as u64)
        .or_else(|| number("retry-after").map(|s| (s * 1000.0).ceil() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_joins_with_or_without_slash() {
        for base in ["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/"] {
            let url = endpoint(&Url::parse(base).unwrap()).unwrap();
            assert_eq!(url.as_str(), "http://127.0.0.1:9/v1/chat/completions");
        }
        let url = endpoint(&Url::parse("https://api.groq.com/openai/v1").unwrap()).unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.groq.com/openai/v1/chat/completions"
        );
    }

    #[test]
    fn retry_hints() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_ms(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after_ms(&h), Some(2000));
        h.insert("retry-after-ms", HeaderValue::from_static("1500.2"));
        assert_eq!(retry_after_ms(&h), Some(1501));
        h.insert("retry-after-ms", HeaderValue::from_static("soon"));
        assert_eq!(retry_after_ms(&h), Some(2000));
    }
}
