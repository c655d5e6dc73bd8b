//! AWS Bedrock `ConverseStream` adapter (protocols/aws-azure.md A4):
//! `POST {base}/model/{modelId}/converse-stream`, the answer an AWS event-stream (A0) of
//! `messageStart`, `contentBlockDelta` (text or tool-use input), `contentBlockStop`,
//! `messageStop`, then `metadata` with the token usage.
//!
//! The key is `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`, signed with SigV4 for service
//! `bedrock`; a key without `:` is a Bedrock API key, sent as `Authorization: Bearer`. The region
//! comes from the host (`bedrock-runtime.{region}.amazonaws.com`), else from a `region` query
//! parameter of the base URL, else `us-east-1` (simulators); the query is not sent.
//!
//! Converse has no system role and wants a conversation that starts with a user turn and
//! alternates: system messages go to `system`, consecutive same-role messages merge into one
//! turn, and a conversation the agent opens gets [`OPENING`] as its first user turn.
//!
//! Tools: `toolConfig {tools: [{toolSpec}], toolChoice: auto|any|tool}` (no "none", no switch for
//! parallel calls); calls come back as `toolUse` blocks (`contentBlockStart` then input
//! fragments), `stopReason: "tool_use"`; results go back as `toolResult` blocks of a user turn
//! (botocore bedrock-runtime `ToolConfiguration`, `ToolUseBlock`, `ToolResultBlock`; A4).

pub(crate) mod decoder;
mod wire;

use crate::estimate::estimate_input_tokens;
use crate::http::{self, Refusal};
use crate::{pump, Llm, LlmError, LlmEvent, LlmRequest};
use aws::{AmzDate, Credentials, Signer};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use url::Url;

/// The public runtime endpoint for `us-east-1`; other regions change the host.
pub const DEFAULT_BASE_URL: &str = "https://bedrock-runtime.us-east-1.amazonaws.com";
/// The SigV4 signing name of the runtime and control planes.
const SERVICE: &str = "bedrock";
/// The first user turn of a conversation the agent opened (Converse refuses one that starts
/// with the assistant).
pub const OPENING: &str = "(The call has started.)";
/// Where AWS JSON protocols name the error.
const ERROR_TYPE: &str = "x-amzn-errortype";

/// Stateless adapter over one shared connection pool; key and URL come with each request.
pub struct Bedrock {
    /// The pool [`crate::registry`] gives every adapter; it builds this struct directly.
    pub(crate) http: reqwest::Client,
}

#[async_trait::async_trait]
impl Llm for Bedrock {
    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let url = converse_url(req.base_url, req.model)?;
        let body = serde_json::to_vec(&wire::ConverseRequest::new(req.messages, req.max_tokens, req.tools))
            .map_err(|e| LlmError::BadRequest(format!("cannot encode the request: {e}")))?;
        let auth = Auth::of(req.key, req.base_url)?;
        let builder = auth.apply(self.http.post(url.clone()), "POST", &url, &body)?;
        let resp = http::send(builder.header(CONTENT_TYPE, "application/json").body(body)).await?;
        if !resp.status().is_success() {
            return Err(read_refusal(resp).await);
        }
        let decoder = decoder::Decoder::new(estimate_input_tokens(req.messages));
        Ok(pump::spawn_framed(resp, decoder::EventStream::default(), decoder))
    }
}

/// `{base}/model/{modelId}/converse-stream` with the model id percent-encoded as one segment
/// (as the AWS SDKs send it: `amazon.nova-lite-v1%3A0`), no query.
fn converse_url(base: &Url, model: &str) -> Result<Url, LlmError> {
    if model.is_empty() {
        return Err(LlmError::BadRequest("no model given".into()));
    }
    let mut encoded = String::with_capacity(model.len() + 8);
    aws::sigv4::uri_encode(model, false, &mut encoded);
    let mut url = http::join(base, None, &["model"])?;
    let path = format!("{}/{encoded}/converse-stream", url.path());
    url.set_path(&path);
    url.set_query(None);
    Ok(url)
}

/// The control plane's `GET /foundation-models` (ListFoundationModels), the key check (§K):
/// `bedrock-runtime…` hosts become `bedrock…`; any other host (a simulator) serves it itself.
fn models_url(base: &Url) -> Result<Url, LlmError> {
    let mut url = base.clone();
    if let Some(control) =
        url.host_str().and_then(|h| h.strip_prefix("bedrock-runtime")).map(|rest| format!("bedrock{rest}"))
    {
        url.set_host(Some(&control)).map_err(|e| LlmError::BadRequest(format!("bad Bedrock host: {e}")))?;
    }
    let mut url = http::join(&url, None, &["foundation-models"])?;
    url.set_query(None);
    Ok(url)
}

/// How a request proves the key.
enum Auth {
    SigV4(Signer),
    Bearer(SecretString),
}

impl Auth {
    fn of(key: &SecretString, base: &Url) -> Result<Self, LlmError> {
        let key = key.expose_secret();
        if !key.contains(':') {
            return Ok(Self::Bearer(SecretString::from(key.trim().to_string())));
        }
        let credentials = Credentials::parse(key).map_err(|e| LlmError::BadRequest(e.to_string()))?;
        Ok(Self::SigV4(Signer::new(credentials, aws::region_from_url(base), SERVICE)))
    }

    /// Adds the auth headers (sensitive) for `method url` with `body`.
    fn apply(
        &self,
        builder: reqwest::RequestBuilder,
        method: &str,
        url: &Url,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder, LlmError> {
        match self {
            Self::Bearer(key) => {
                Ok(builder.header(AUTHORIZATION, http::secret_header(&format!("Bearer {}", key.expose_secret()))?))
            }
            Self::SigV4(signer) => {
                let signed_headers: &[(&str, &str)] =
                    if body.is_empty() { &[] } else { &[("content-type", "application/json")] };
                let signed = signer.sign(method, url, signed_headers, body, AmzDate::now());
                let mut builder = builder;
                for (name, value) in signed.pairs() {
                    let value = if name == "x-amz-date" {
                        reqwest::header::HeaderValue::try_from(value)
                            .map_err(|_| LlmError::BadRequest("bad signing date".into()))?
                    } else {
                        http::secret_header(value)?
                    };
                    builder = builder.header(name, value);
                }
                Ok(builder)
            }
        }
    }
}

/// Checks `key` with a signed `GET /foundation-models`.
pub(crate) async fn check_key(
    client: &reqwest::Client,
    base: &Url,
    key: &SecretString,
    timeout: std::time::Duration,
) -> Result<(), LlmError> {
    let url = models_url(base)?;
    let auth = Auth::of(key, base)?;
    let resp = http::send(auth.apply(client.get(url.clone()), "GET", &url, &[])?.timeout(timeout)).await?;
    if !resp.status().is_success() {
        return Err(read_refusal(resp).await);
    }
    Ok(())
}

async fn read_refusal(resp: reqwest::Response) -> LlmError {
    let error_type = resp.headers().get(ERROR_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    refused(error_type.as_deref(), Refusal::read(resp).await)
}

/// The error for a refused request, by the AWS error code (`x-amzn-ErrorType`, else the body's
/// `__type`/`code`; `:…` suffixes and `ns#` prefixes stripped): a bad key pair is
/// `Unauthorized` though AWS answers 403, a valid key without model access `Forbidden`.
fn refused(error_type: Option<&str>, r: Refusal) -> LlmError {
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let field = |k: &str| body.get(k).and_then(serde_json::Value::as_str);
    let code = error_type.or(field("__type")).or(field("code")).map(|c| {
        let c = c.split(':').next().unwrap_or(c);
        c.rsplit('#').next().unwrap_or(c)
    });
    let message = field("message").or(field("Message"));
    match code {
        Some(
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignatureException"
            | "MissingAuthenticationTokenException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch",
        ) => LlmError::Unauthorized,
        Some("AccessDeniedException") => LlmError::Forbidden,
        Some("ThrottlingException" | "ModelNotReadyException") => {
            LlmError::RateLimited { retry_after_ms: r.retry_after_ms }
        }
        _ => LlmError::from_status(r.status, r.retry_after_ms, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let base = Url::parse(DEFAULT_BASE_URL).unwrap();
        assert_eq!(
            converse_url(&base, "amazon.nova-lite-v1:0").unwrap().as_str(),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-lite-v1%3A0/converse-stream"
        );
        let arn = "arn:aws:bedrock:us-east-1:1:inference-profile/us.amazon.nova-lite-v1:0";
        assert!(converse_url(&base, arn)
            .unwrap()
            .path()
            .contains("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus."));
        assert_eq!(
            models_url(&Url::parse("https://bedrock-runtime.eu-west-3.amazonaws.com/").unwrap()).unwrap().as_str(),
            "https://bedrock.eu-west-3.amazonaws.com/foundation-models"
        );
        let sim = Url::parse("http://127.0.0.1:9/?region=eu-west-1").unwrap();
        assert_eq!(models_url(&sim).unwrap().as_str(), "http://127.0.0.1:9/foundation-models");
        assert_eq!(converse_url(&sim, "m").unwrap().as_str(), "http://127.0.0.1:9/model/m/converse-stream");
        assert!(converse_url(&sim, "").is_err());
    }

    #[test]
    fn refusals_by_aws_code() {
        let r = |status, body: &str| Refusal {
            status,
            retry_after_ms: None,
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        };
        let bad = r#"{"message":"The security token included in the request is invalid."}"#;
        let coral = "UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/";
        assert_eq!(refused(Some(coral), r(403, bad)), LlmError::Unauthorized);
        assert_eq!(
            refused(None, r(403, r#"{"__type":"InvalidSignatureException","message":"x"}"#)),
            LlmError::Unauthorized
        );
        assert_eq!(refused(Some("AccessDeniedException"), r(403, "{}")), LlmError::Forbidden);
        assert_eq!(refused(Some("ThrottlingException"), r(429, "{}")), LlmError::RateLimited { retry_after_ms: None });
        assert_eq!(
            refused(Some("ValidationException"), r(400, r#"{"message":"The provided model identifier is invalid."}"#)),
            LlmError::BadRequest("The provided model identifier is invalid.".into())
        );
        assert_eq!(refused(None, r(503, "")), LlmError::Server { status: 503 });
    }

    #[test]
    fn keys_pick_the_auth_scheme() {
        let base = Url::parse(DEFAULT_BASE_URL).unwrap();
        let key = |k: &str| Auth::of(&SecretString::from(k.to_string()), &base);
        assert!(matches!(key("AKIDEXAMPLE:secret/with+chars"), Ok(Auth::SigV4(s)) if s.region() == "us-east-1"));
        assert!(matches!(key("ABSKbedrockapikey0123"), Ok(Auth::Bearer(_))));
        let Err(err) = key("AKID:") else { panic!("an empty secret is refused") };
        assert!(matches!(err, LlmError::BadRequest(_)));
    }
}
