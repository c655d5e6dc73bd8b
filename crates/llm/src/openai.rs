//! OpenAI Chat Completions streaming adapter (protocols/llm.md D1); any OpenAI-compatible
//! endpoint works through `base_url`.
//!
//! # Responses API
//! A model named `responses:<model>` (e.g. `responses:gpt-4.1-mini`) is sent to
//! `POST {base}/responses` instead (protocols/llm-more.md E1), with `<model>` as the model.
//! The prefix selects the wire API per agent without a new provider name, so the rate table's
//! `openai` rows still price it: bill by [`crate::base_model`], which strips the prefix.

pub(crate) mod decoder;
pub(crate) mod request;
pub(crate) mod responses;
mod tool_calls;
pub(crate) mod wire;

use crate::compat::{self, CompatProvider};
use crate::estimate::estimate_input_tokens;
use crate::http::{self, Refusal};
use crate::{pump, Llm, LlmError, LlmEvent, LlmRequest, Message};
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use url::Url;

/// The model-name prefix that selects the Responses API (see the module docs).
pub const RESPONSES_PREFIX: &str = "responses:";

/// The model id a provider and the rate table know: `model` without [`RESPONSES_PREFIX`].
pub fn base_model(model: &str) -> &str {
    model.strip_prefix(RESPONSES_PREFIX).unwrap_or(model)
}

/// Stateless adapter over one shared connection pool; key and URL come with each request.
pub struct OpenAi {
    http: reqwest::Client,
    provider: &'static CompatProvider,
}

impl OpenAi {
    pub fn new(http: reqwest::Client) -> Self {
        Self::compatible(http, &compat::OPENAI)
    }

    /// The adapter for an OpenAI-compatible provider: its name, usage options and token-cap
    /// field (e.g. `OpenAi::compatible(http, &compat::GROQ)`).
    pub fn compatible(http: reqwest::Client, provider: &'static CompatProvider) -> Self {
        Self { http, provider }
    }
}

/// Posts a streaming Chat Completions request with `auth` and pumps its events; shared with
/// Azure, whose only differences are the URL and the key header.
pub(crate) async fn start_chat(
    client: &reqwest::Client,
    url: Url,
    auth: (HeaderName, HeaderValue),
    body: &request::ChatRequest<'_>,
    messages: &[Message],
) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    let decoder = decoder::Decoder::new(estimate_input_tokens(messages));
    pump::start_sse(client.post(url).header(auth.0, auth.1).json(body), refused, decoder).await
}

#[async_trait::async_trait]
impl Llm for OpenAi {
    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let auth = (AUTHORIZATION, http::secret_header(&format!("Bearer {}", req.key.expose_secret()))?);
        if let Some(model) = req.model.strip_prefix(RESPONSES_PREFIX) {
            let url = http::join(req.base_url, None, &["responses"])?;
            return responses::start(&self.http, url, auth, model, &req).await;
        }
        let p = self.provider;
        let dialect =
            request::Dialect { include_usage: p.include_usage, max_tokens_field: p.max_tokens_field, tools: p.tools };
        let body = request::chat_body(req.model, &req, dialect);
        start_chat(&self.http, endpoint(req.base_url)?, auth, &body, req.messages).await
    }
}

/// The error for a refused Chat Completions request. A 400 that says the key is wrong (xAI's
/// "Incorrect API key provided") is [`LlmError::Unauthorized`], as a 401 elsewhere.
pub(crate) fn refused(r: Refusal) -> LlmError {
    let env: wire::ErrorEnvelope = serde_json::from_slice(&r.body).unwrap_or_default();
    let message = env.message();
    if r.status == 400 && message.is_some_and(says_bad_key) {
        return LlmError::Unauthorized;
    }
    LlmError::from_status(r.status, r.retry_after_ms, message)
}

fn says_bad_key(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("api key") && ["incorrect", "invalid", "not valid"].iter().any(|w| m.contains(w))
}

/// `{base_url}/chat/completions`, whether or not `base_url` ends with '/'.
fn endpoint(base: &Url) -> Result<Url, LlmError> {
    http::join(base, None, &["chat", "completions"])
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
        assert_eq!(url.as_str(), "https://api.groq.com/openai/v1/chat/completions");
    }

    #[test]
    fn xai_bad_key_400_is_unauthorized() {
        let body = br#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***xx. You can obtain an API key from https://console.x.ai."}"#;
        let r =
            |status, body: &[u8]| Refusal { status, retry_after_ms: None, body: bytes::Bytes::copy_from_slice(body) };
        assert_eq!(refused(r(400, body)), LlmError::Unauthorized);
        assert!(matches!(
            refused(r(400, br#"{"error":{"message":"max_tokens is too large"}}"#)),
            LlmError::BadRequest(_)
        ));
        assert_eq!(refused(r(402, b"")), LlmError::BadRequest("HTTP 402 without an error message".into()));
    }
}
