//! Key validation (protocols/llm-more.md E5): the one cheap, unbilled authenticated call per
//! provider, so a key is checked when it is saved rather than on a caller's first turn.

use crate::http::{self, Refusal};
use crate::{anthropic, azure, bedrock, compat, gemini, openai, LlmError};
use reqwest::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use url::Url;

/// A key check is interactive; a provider that does not answer in this time is unreachable.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Checks `key` against `provider` at `base_url` (see [`compat::default_base_url`]).
///
/// `Ok` means the provider accepted the key. [`LlmError::Unauthorized`] means it is wrong;
/// `Forbidden` that it is valid but blocked or not allowed; `RateLimited`, `Server` and `Http`
/// say nothing about the key (retry later, never mark the key bad on those).
pub async fn validate_key(
    provider: &str,
    http: &reqwest::Client,
    base_url: &Url,
    key: &SecretString,
) -> Result<(), LlmError> {
    match provider {
        "anthropic" => {
            let req = http
                .get(anthropic::models_url(base_url)?)
                .header("x-api-key", http::secret_header(key.expose_secret())?)
                .header("anthropic-version", anthropic::VERSION);
            check(req, anthropic::refused).await.map(drop)
        }
        "google" => {
            let req = http
                .get(gemini::models_url(base_url)?)
                .header("x-goog-api-key", http::secret_header(key.expose_secret())?);
            check(req, gemini::refused).await.map(drop)
        }
        "azure" => {
            let (name, value) = azure::key_header(key)?;
            check(http.get(azure::models_url(base_url)?).header(name, value), openai::refused).await.map(drop)
        }
        "bedrock" => bedrock::check_key(http, base_url, key, TIMEOUT).await,
        name => {
            let Some(p) = compat::find(name) else {
                return Err(LlmError::BadRequest(format!("no key check for provider {name}")));
            };
            let url = http::join(base_url, None, &[p.validate_path])?;
            let auth = http::secret_header(&format!("Bearer {}", key.expose_secret()))?;
            let body = check(http.get(url).header(AUTHORIZATION, auth), openai::refused).await?;
            if p.name == compat::XAI.name && xai_key_blocked(&body) {
                return Err(LlmError::Forbidden);
            }
            Ok(())
        }
    }
}

/// Sends the check; a 2xx gives its body, anything else the provider's error.
async fn check(req: reqwest::RequestBuilder, refused: fn(Refusal) -> LlmError) -> Result<bytes::Bytes, LlmError> {
    let resp = http::send(req.timeout(TIMEOUT)).await?;
    if !resp.status().is_success() {
        return Err(refused(Refusal::read(resp).await));
    }
    resp.bytes().await.map_err(|e| LlmError::Http(crate::error::describe_transport(&e)))
}

/// xAI's `GET /v1/api-key` answers 200 for a blocked or disabled key too.
fn xai_key_blocked(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    ["api_key_blocked", "api_key_disabled", "team_blocked"]
        .iter()
        .any(|f| v.get(*f).and_then(serde_json::Value::as_bool) == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_provider_is_a_bad_request() {
        let key = SecretString::from("sk-validate-0123456789".to_string());
        let base = Url::parse("http://127.0.0.1:9/v1").unwrap();
        let err = validate_key("nope", &reqwest::Client::new(), &base, &key).await;
        assert!(matches!(err, Err(LlmError::BadRequest(_))), "{err:?}");
    }

    #[test]
    fn xai_blocked_flags() {
        assert!(xai_key_blocked(br#"{"redacted_api_key":"xai-...","api_key_blocked":false,"api_key_disabled":true}"#));
        assert!(!xai_key_blocked(br#"{"api_key_blocked":false,"team_blocked":false,"acls":["api-key:model:*"]}"#));
        assert!(!xai_key_blocked(b"not json"));
    }
}
