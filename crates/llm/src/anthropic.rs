//! Anthropic Messages streaming adapter (protocols/llm.md D2): `POST {base}/v1/messages` with
//! `x-api-key` and `anthropic-version`, named SSE events, `message_stop` as the end marker.
//!
//! Tools: `tools: [{name, description, input_schema}]`, `tool_choice {type: auto|any|tool|none,
//! disable_parallel_tool_use}`; calls come back as `tool_use` blocks whose input streams as
//! `input_json_delta` fragments, with `stop_reason: "tool_use"`; results go back as
//! `tool_result` blocks of a user turn (shapes: anthropic-sdk-python `ToolParam`,
//! `ToolChoice*Param`, `ToolUseBlockParam`, `ToolResultBlockParam`).

pub(crate) mod decoder;
mod wire;

use crate::estimate::estimate_input_tokens;
use crate::http::{self, Refusal};
use crate::{pump, Llm, LlmError, LlmEvent, LlmRequest};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use url::Url;

/// The API version every request pins (the only stable one).
pub(crate) const VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; a spoken turn this long is already far too long.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Stateless adapter over one shared connection pool; key and URL come with each request.
pub struct Anthropic {
    /// The pool [`crate::registry`] gives every adapter; it builds this struct directly.
    pub(crate) http: reqwest::Client,
}

#[async_trait::async_trait]
impl Llm for Anthropic {
    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let url = http::join(req.base_url, Some("v1"), &["messages"])?;
        let body = wire::MessagesRequest::new(
            req.model,
            req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            req.messages,
            req.tools,
        );
        let post = self
            .http
            .post(url)
            .header("x-api-key", http::secret_header(req.key.expose_secret())?)
            .header("anthropic-version", VERSION)
            .json(&body);
        pump::start_sse(post, refused, decoder::Decoder::new(estimate_input_tokens(req.messages))).await
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
