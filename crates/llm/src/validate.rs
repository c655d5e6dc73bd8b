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
    use crate::sim::{
        AnthropicSim, AnthropicSimConfig, AzureSim, AzureSimConfig, BedrockSim, BedrockSimConfig, GeminiSim,
        GeminiSimConfig, OpenAiSim, OpenAiSimConfig, SimKeys,
    };

    const GOOD: &str = "sk-validate-good-0123456789";
    const BAD: &str = "sk-validate-bad-9876543210";

    fn keys() -> SimKeys {
        SimKeys::from(&[GOOD][..])
    }

    async fn assert_checks(provider: &str, base: &Url) {
        let http = reqwest::Client::new();
        let good = SecretString::from(GOOD.to_string());
        let bad = SecretString::from(BAD.to_string());
        assert_eq!(validate_key(provider, &http, base, &good).await, Ok(()), "{provider}");
        let err = validate_key(provider, &http, base, &bad).await.unwrap_err();
        assert_eq!(err, LlmError::Unauthorized, "{provider}");
        assert!(!format!("{err} {err:?}").contains(BAD));
    }

    #[tokio::test]
    async fn openai_and_family_against_the_openai_sim() {
        let sim = OpenAiSim::start(OpenAiSimConfig { keys: keys(), ..Default::default() }).await.unwrap();
        // Every family member whose check is `GET {base}/models` is served by the sim.
        for p in std::iter::once(&compat::OPENAI).chain(compat::FAMILY) {
            if p.validate_path == "models" {
                assert_checks(p.name, &sim.base_url()).await;
            }
        }
        assert_eq!(sim.requests(), 0, "a key check is not a completion");
    }

    #[tokio::test]
    async fn anthropic_against_its_sim() {
        let sim = AnthropicSim::start(AnthropicSimConfig { keys: keys(), ..Default::default() }).await.unwrap();
        assert_checks("anthropic", &sim.base_url()).await;
        assert_eq!(sim.seen_keys(), vec![GOOD.to_string(), BAD.to_string()]);
    }

    #[tokio::test]
    async fn gemini_against_its_sim() {
        let sim = GeminiSim::start(GeminiSimConfig { keys: keys(), ..Default::default() }).await.unwrap();
        assert_checks("google", &sim.base_url()).await;
        assert_eq!(sim.seen_keys(), vec![GOOD.to_string(), BAD.to_string()]);
    }

    #[tokio::test]
    async fn azure_against_its_sim_on_both_endpoint_forms() {
        let sim = AzureSim::start(AzureSimConfig { keys: keys(), ..Default::default() }).await.unwrap();
        assert_checks("azure", &sim.base_url()).await;
        assert_checks("azure", &sim.base_url().join("openai/v1").unwrap()).await;
        assert_eq!(sim.requests(), 0, "a key check is not a completion");
    }

    /// A signed ListFoundationModels: the right pair passes, a wrong secret or unknown key id
    /// is `Unauthorized` (AWS's 403 `InvalidSignatureException` / `UnrecognizedClientException`).
    #[tokio::test]
    async fn bedrock_against_its_sim() {
        let good = "AKIDVALIDATE0001:validateSecret/0123456789";
        let sim = BedrockSim::start(BedrockSimConfig { keys: SimKeys::from(&[good][..]), ..Default::default() })
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let check = |key: &str| {
            let key = SecretString::from(key.to_string());
            let http = http.clone();
            let base = sim.base_url();
            async move { validate_key("bedrock", &http, &base, &key).await }
        };
        assert_eq!(check(good).await, Ok(()));
        for bad in ["AKIDVALIDATE0001:wrongSecret", "AKIDOTHER0000001:validateSecret/0123456789"] {
            let err = check(bad).await.unwrap_err();
            assert_eq!(err, LlmError::Unauthorized, "{bad}");
            assert!(!format!("{err} {err:?}").contains("Secret"));
        }
        assert_eq!(sim.requests(), 0, "a key check is not a completion");
    }

    #[tokio::test]
    async fn unknown_provider_and_unreachable_host() {
        let http = reqwest::Client::new();
        let key = SecretString::from(GOOD.to_string());
        let base = Url::parse("http://127.0.0.1:9/v1").unwrap();
        assert!(matches!(validate_key("nope", &http, &base, &key).await, Err(LlmError::BadRequest(_))));
        let sim = OpenAiSim::start(OpenAiSimConfig::default()).await.unwrap();
        let base = sim.base_url();
        drop(sim);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(validate_key("groq", &http, &base, &key).await, Err(LlmError::Http(_))));
    }

    #[test]
    fn xai_blocked_flags() {
        assert!(xai_key_blocked(br#"{"redacted_api_key":"xai-...","api_key_blocked":false,"api_key_disabled":true}"#));
        assert!(!xai_key_blocked(br#"{"api_key_blocked":false,"team_blocked":false,"acls":["api-key:model:*"]}"#));
        assert!(!xai_key_blocked(b"not json"));
    }
}
