//! Google Gemini (AI Studio) streaming adapter (protocols/llm.md D3):
//! `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse` with `x-goog-api-key`.
//! There is no end marker: the body ends after the chunk carrying `finishReason`.
//!
//! Tools: `tools: [{functionDeclarations}]`, `toolConfig.functionCallingConfig {mode,
//! allowedFunctionNames}`; calls come back whole as `functionCall` parts (with `finishReason`
//! `STOP`; an id made up when Gemini gives none), results go back as `functionResponse` parts of
//! a user content (google-genai `FunctionDeclaration`, `FunctionCallingConfig`,
//! `FunctionResponse`). Gemini has no switch for parallel calls.

pub(crate) mod decoder;
mod wire;

use crate::estimate::estimate_input_tokens;
use crate::http::{self, Refusal};
use crate::{pump, Llm, LlmError, LlmEvent, LlmRequest};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use url::Url;

/// The API version the AI Studio endpoints live under.
const VERSION: &str = "v1beta";

/// Stateless adapter over one shared connection pool; key and URL come with each request.
pub struct Gemini {
    /// The pool [`crate::registry`] gives every adapter; it builds this struct directly.
    pub(crate) http: reqwest::Client,
}

#[async_trait::async_trait]
impl Llm for Gemini {
    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let url = endpoint(req.base_url, req.model)?;
        let body = wire::GenerateRequest::new(req.messages, req.max_tokens, req.tools)?;
        let post =
            self.http.post(url).header("x-goog-api-key", http::secret_header(req.key.expose_secret())?).json(&body);
        pump::start_sse(post, refused, decoder::Decoder::new(estimate_input_tokens(req.messages))).await
    }
}

/// `{base}/v1beta/models/{model}:streamGenerateContent?alt=sse` (without `alt=sse` Google
/// streams one JSON array instead of SSE). `model` may carry Google's `models/` prefix.
fn endpoint(base: &Url, model: &str) -> Result<Url, LlmError> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if model.is_empty() {
        return Err(LlmError::BadRequest("no model given".into()));
    }
    let action = format!("{model}:streamGenerateContent");
    let mut url = http::join(base, Some(VERSION), &["models", &action])?;
    url.set_query(Some("alt=sse"));
    Ok(url)
}

/// `GET {base}/v1beta/models?pageSize=1`: the cheapest authenticated call (E5).
pub(crate) fn models_url(base: &Url) -> Result<Url, LlmError> {
    let mut url = http::join(base, Some(VERSION), &["models"])?;
    url.set_query(Some("pageSize=1"));
    Ok(url)
}

/// The error for a refused request, by Google's `error.status` where it is more precise than
/// the HTTP status (an invalid key is a 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`).
pub(crate) fn refused(r: Refusal) -> LlmError {
    let env: wire::ErrorEnvelope = serde_json::from_slice(&r.body).unwrap_or_default();
    env.error.to_llm_error(r.status, r.retry_after_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_shape() {
        for base in [
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/",
            "https://generativelanguage.googleapis.com/v1beta",
        ] {
            for model in ["gemini-2.5-flash", "models/gemini-2.5-flash"] {
                let url = endpoint(&Url::parse(base).unwrap(), model).unwrap();
                assert_eq!(
                    url.as_str(),
                    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
                );
            }
        }
        assert!(endpoint(&Url::parse("http://h").unwrap(), "models/").is_err());
        assert_eq!(
            models_url(&Url::parse("http://h:1/").unwrap()).unwrap().as_str(),
            "http://h:1/v1beta/models?pageSize=1"
        );
    }

    #[test]
    fn refusals_by_google_status() {
        let r = |status, body: &str| {
            refused(Refusal { status, retry_after_ms: None, body: bytes::Bytes::copy_from_slice(body.as_bytes()) })
        };
        let bad_key = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}"#;
        assert_eq!(r(400, bad_key), LlmError::Unauthorized);
        assert_eq!(
            r(401, r#"{"error":{"code":401,"message":"x","status":"UNAUTHENTICATED"}}"#),
            LlmError::Unauthorized
        );
        assert_eq!(r(403, r#"{"error":{"code":403,"message":"x","status":"PERMISSION_DENIED"}}"#), LlmError::Forbidden);
        let quota = r#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"13.5s"}]}}"#;
        assert_eq!(r(429, quota), LlmError::RateLimited { retry_after_ms: Some(13_500) });
        assert_eq!(
            r(400, r#"{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}"#),
            LlmError::BadRequest("Invalid JSON payload received.".into())
        );
        assert_eq!(
            r(503, r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#),
            LlmError::Server { status: 503 }
        );
        assert_eq!(r(502, "<html>"), LlmError::Server { status: 502 });
    }
}
