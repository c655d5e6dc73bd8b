//! OpenAI Chat Completions streaming adapter (protocols/llm.md D1); any OpenAI-compatible
//! endpoint works through `base_url`.

mod decoder;
mod tool_calls;
mod wire;

#[cfg(test)]
mod family_tests;
#[cfg(test)]
mod loopback_tests;

use crate::compat::{self, CompatProvider, MaxTokensField};
use crate::estimate::estimate_input_tokens;
use crate::http::{self, Refusal};
use crate::{pump, Llm, LlmError, LlmEvent, LlmRequest};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use url::Url;

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

    fn body<'a>(&self, req: &LlmRequest<'a>) -> wire::ChatRequest<'a> {
        let (max_completion_tokens, max_tokens) = match self.provider.max_tokens_field {
            MaxTokensField::MaxCompletionTokens => (req.max_tokens, None),
            MaxTokensField::MaxTokens => (None, req.max_tokens),
        };
        wire::ChatRequest {
            model: req.model,
            messages: req.messages,
            stream: true,
            stream_options: self.provider.include_usage.then_some(wire::StreamOptions { include_usage: true }),
            max_completion_tokens,
            max_tokens,
        }
    }
}

#[async_trait::async_trait]
impl Llm for OpenAi {
    fn name(&self) -> &'static str {
        self.provider.name
    }

    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let url = endpoint(req.base_url)?;
        let auth = http::secret_header(&format!("Bearer {}", req.key.expose_secret()))?;
        let resp = http::send(
            self.http.post(url).header(AUTHORIZATION, auth).header(ACCEPT, "text/event-stream").json(&self.body(&req)),
        )
        .await?;
        if !resp.status().is_success() {
            return Err(refused(Refusal::read(resp).await));
        }
        let decoder = decoder::Decoder::new(estimate_input_tokens(req.messages));
        Ok(pump::spawn(resp, decoder))
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
