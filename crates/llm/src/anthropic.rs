//! Anthropic Messages streaming adapter (protocols/llm.md D2): `POST {base}/v1/messages` with
//! `x-api-key` and `anthropic-version`, named SSE events, `message_stop` as the end marker.

pub(crate) mod decoder;
mod wire;

#[cfg(test)]
mod loopback_tests;

use crate::estimate::estimate_input_tokens;
use crate::http::{self, Refusal};
use crate::{pump, Llm, LlmError, LlmEvent, LlmRequest};
use reqwest::header::ACCEPT;
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use url::Url;

/// The API version every request pins (the only stable one).
pub(crate) const VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; a spoken turn this long is already far too long.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Stateless adapter over one shared connection pool; key and URL come with each request.
pub struct Anthropic {
    http: reqwest::Client,
}

impl Anthropic {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

#[async_trait::async_trait]
impl Llm for Anthropic {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let url = http::join(req.base_url, Some("v1"), &["messages"])?;
        let body = wire::MessagesRequest::new(req.model, req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS), req.messages);
        let resp = http::send(
            self.http
                .post(url)
                .header("x-api-key", http::secret_header(req.key.expose_secret())?)
                .header("anthropic-version", VERSION)
                .header(ACCEPT, "text/event-stream")
                .json(&body),
        )
        .await?;
        if !resp.status().is_success() {
            return Err(refused(Refusal::read(resp).await));
        }
        let decoder = decoder::Decoder::new(estimate_input_tokens(req.messages));
        Ok(pump::spawn(resp, decoder))
    }
}

/// The error for a refused request: by status (529 `overloaded_error` stays `Server{529}`),
/// with Anthropic's `error.message` for a 4xx.
pub(crate) fn refused(r: Refusal) -> LlmError {
    let env: wire::ErrorEnvelope = serde_json::from_slice(&r.body).unwrap_or_default();
    LlmError::from_status(r.status, r.retry_after_ms, env.error.message.as_deref())
}

/// `GET {base}/v1/models?limit=1`: the cheapest authenticated call (E5).
pub(crate) fn models_url(base: &Url) -> Result<Url, LlmError> {
    let mut url = http::join(base, Some("v1"), &["models"])?;
    url.set_query(Some("limit=1"));
    Ok(url)
}
