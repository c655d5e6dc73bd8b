//! Azure OpenAI streaming adapter (protocols/aws-azure.md Z3): Chat Completions with the
//! `api-key` header, the deployment name as the model, the OpenAI decoder (it already skips
//! Azure's empty-`choices` prompt-filter chunks and bills the usage chunk).
//!
//! The base URL picks the endpoint:
//! - `https://{resource}.openai.azure.com` (or `….cognitiveservices.azure.com`), optionally with
//!   `?api-version=…`: the classic `POST /openai/deployments/{deployment}/chat/completions
//!   ?api-version=…`, [`DEFAULT_API_VERSION`] unless the base names one; the cap goes in
//!   `max_tokens`, which every dated version accepts.
//! - `https://{resource}.openai.azure.com/openai/v1`: the v1 API, `POST {base}/chat/completions`
//!   with the deployment as `model` and OpenAI's `max_completion_tokens`.
//!
//! A model named `responses:{deployment}` uses the Responses API, always on the v1 path
//! (`/openai/v1/responses`, GA without an api-version), like the `openai` adapter.

use crate::compat::{MaxTokensField, OPENAI_TOOLS};
use crate::http;
use crate::openai::{self, request, responses, RESPONSES_PREFIX};
use crate::{Llm, LlmError, LlmEvent, LlmRequest};
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use url::Url;

/// A placeholder that parses: operators replace `YOUR-RESOURCE` with their resource name.
pub const DEFAULT_BASE_URL: &str = "https://YOUR-RESOURCE.openai.azure.com";
/// The latest GA dated version (Z3); `stream_options.include_usage` needs 2024-09-01-preview or
/// later.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";
/// The resource-key header (Entra tokens would go in `Authorization` instead).
const API_KEY: HeaderName = HeaderName::from_static("api-key");

/// Stateless adapter over one shared connection pool; key and URL come with each request.
pub struct Azure {
    /// The pool [`crate::registry`] gives every adapter; it builds this struct directly.
    pub(crate) http: reqwest::Client,
}

#[async_trait::async_trait]
impl Llm for Azure {
    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let auth = key_header(req.key)?;
        if let Some(deployment) = req.model.strip_prefix(RESPONSES_PREFIX) {
            return responses::start(&self.http, responses_url(req.base_url)?, auth, deployment, &req).await;
        }
        if req.model.is_empty() {
            return Err(LlmError::BadRequest("no deployment given (the model is the deployment name)".into()));
        }
        let (url, field) = match Endpoint::of(req.base_url) {
            Endpoint::V1 => {
                (http::join(req.base_url, None, &["chat", "completions"])?, MaxTokensField::MaxCompletionTokens)
            }
            Endpoint::Classic { api_version } => {
                let mut url =
                    http::join(req.base_url, Some("openai"), &["deployments", req.model, "chat", "completions"])?;
                url.query_pairs_mut().clear().append_pair("api-version", &api_version);
                (url, MaxTokensField::MaxTokens)
            }
        };
        // OpenAI's tool fields: `required` and `parallel_tool_calls` are in the 2024-10-21 GA spec
        // (UNVERIFIED here; a mid-2024 Microsoft Q&A says earlier versions lacked `required`).
        let dialect = request::Dialect { include_usage: true, max_tokens_field: field, tools: OPENAI_TOOLS };
        let body = request::chat_body(req.model, &req, dialect);
        openai::start_chat(&self.http, url, auth, &body, req.messages).await
    }
}

/// `api-key: <key>`, marked sensitive.
pub(crate) fn key_header(key: &SecretString) -> Result<(HeaderName, HeaderValue), LlmError> {
    Ok((API_KEY, http::secret_header(key.expose_secret())?))
}

/// Which Azure API a base URL addresses.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    /// The path ends in `/openai/v1`.
    V1,
    /// A resource endpoint (possibly ending in `/openai`), with its api-version.
    Classic { api_version: String },
}

impl Endpoint {
    fn of(base: &Url) -> Self {
        let segments: Vec<&str> =
            base.path_segments().map(|s| s.filter(|s| !s.is_empty()).collect()).unwrap_or_default();
        if segments.ends_with(&["openai", "v1"]) {
            return Self::V1;
        }
        let api_version = base
            .query_pairs()
            .find(|(k, v)| k == "api-version" && !v.is_empty())
            .map_or_else(|| DEFAULT_API_VERSION.to_string(), |(_, v)| v.into_owned());
        Self::Classic { api_version }
    }
}

/// `{endpoint}/openai/v1/responses` from either base form.
fn responses_url(base: &Url) -> Result<Url, LlmError> {
    match Endpoint::of(base) {
        Endpoint::V1 => http::join(base, None, &["responses"]),
        Endpoint::Classic { .. } => {
            let mut url = http::join(base, Some("openai"), &["v1", "responses"])?;
            url.set_query(None);
            Ok(url)
        }
    }
}

/// The key check (§K): `GET {endpoint}/openai/models?api-version=…` or `GET {base}/models` on v1.
pub(crate) fn models_url(base: &Url) -> Result<Url, LlmError> {
    match Endpoint::of(base) {
        Endpoint::V1 => http::join(base, None, &["models"]),
        Endpoint::Classic { api_version } => {
            let mut url = http::join(base, Some("openai"), &["models"])?;
            url.query_pairs_mut().clear().append_pair("api-version", &api_version);
            Ok(url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn default_base_parses_as_a_classic_endpoint() {
        let base = u(DEFAULT_BASE_URL);
        assert_eq!(Endpoint::of(&base), Endpoint::Classic { api_version: DEFAULT_API_VERSION.into() });
        assert_eq!(
            models_url(&base).unwrap().as_str(),
            "https://your-resource.openai.azure.com/openai/models?api-version=2024-10-21"
        );
    }

    #[test]
    fn endpoint_forms() {
        assert_eq!(Endpoint::of(&u("https://r.openai.azure.com/openai/v1/")), Endpoint::V1);
        assert_eq!(
            Endpoint::of(&u("https://r.cognitiveservices.azure.com/openai?api-version=2025-04-01-preview")),
            Endpoint::Classic { api_version: "2025-04-01-preview".into() }
        );
        for base in ["https://r.openai.azure.com", "https://r.openai.azure.com/openai/?api-version=x"] {
            assert_eq!(responses_url(&u(base)).unwrap().as_str(), "https://r.openai.azure.com/openai/v1/responses");
        }
        assert_eq!(
            responses_url(&u("https://r.openai.azure.com/openai/v1")).unwrap().as_str(),
            "https://r.openai.azure.com/openai/v1/responses"
        );
        assert_eq!(
            models_url(&u("https://r.openai.azure.com/openai/v1")).unwrap().as_str(),
            "https://r.openai.azure.com/openai/v1/models"
        );
    }
}
