//! Calling an org's webhook tool. The request is JSON, signed with the org's vault secret
//! `webhook`/`signing` ([`gwauth::tool_webhook`]), carries the headers the declaration names
//! (values from the same vault) and never a provider key. Redirects are not followed (a
//! redirect would carry the signed body and the secret headers to a host nobody declared).
//!
//! Request body: `{"type":"tool_call","session_id","call_id","tool","arguments":{…}}`.
//! Result: a 2xx answer's body (at most [`MAX_ANSWER_BYTES`]; empty → `{"ok":true}`); anything
//! else becomes an error result the model reads.

use super::error_result;
use billing::org::StoredCredential;
use billing::tools::{Webhook, SIGNING_SECRET_NAME, WEBHOOK_VAULT_PROVIDER};
use billing::vault::Vault;
use billing::AgentTool;
use billing::ToolRun;
use llm::ToolCall;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::time::Instant;

/// The most of an answer the model is given; a larger one is an error (it would not fit a
/// spoken turn anyway).
pub(crate) const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// The webhook secrets of one session, opened from the org's vault at session start.
#[derive(Default)]
pub(crate) struct WebhookSecrets {
    signing: Option<SecretString>,
    by_name: HashMap<String, SecretString>,
}

impl WebhookSecrets {
    /// Opens the signing secret and every header secret the agent's webhooks name. `Err` is
    /// the vault name that is missing or does not open (never the secret).
    pub(crate) fn open(
        tools: &[AgentTool],
        credentials: &[StoredCredential],
        vault: Option<&Vault>,
    ) -> Result<Self, String> {
        let hooks: Vec<&Webhook> =
            tools.iter().filter_map(|t| if let ToolRun::Webhook(w) = &t.run { Some(w) } else { None }).collect();
        if hooks.is_empty() {
            return Ok(Self::default());
        }
        let open = |name: &str| -> Result<SecretString, String> {
            let row = credentials
                .iter()
                .find(|c| c.provider == WEBHOOK_VAULT_PROVIDER && c.name == name)
                .ok_or_else(|| name.to_string())?;
            let vault = vault.ok_or_else(|| name.to_string())?;
            vault.open(&row.org_id, &row.provider, &row.sealed).map_err(|_| name.to_string())
        };
        let mut by_name = HashMap::new();
        for name in hooks.iter().flat_map(|w| w.headers.values()) {
            if !by_name.contains_key(name) {
                by_name.insert(name.clone(), open(name)?);
            }
        }
        Ok(Self { signing: Some(open(SIGNING_SECRET_NAME)?), by_name })
    }
}

/// Calls the webhook for `call`; always returns the text the model reads. `allow_private`:
/// the operator lets webhooks reach private addresses ([`super::egress`]).
pub(super) async fn call(
    allow_private: bool,
    hook: &Webhook,
    secrets: &WebhookSecrets,
    session_id: &str,
    call: &ToolCall,
    args: &serde_json::Value,
) -> String {
    let Some(signing) = &secrets.signing else {
        return error_result("this tool is not set up: its signing secret is missing");
    };
    let url = match url::Url::parse(&hook.url) {
        Ok(u) => u,
        Err(_) => return error_result("the tool's URL is not valid"),
    };
    if let Err(why) = super::egress::check_literal(&url, allow_private) {
        tracing::warn!(tool = %call.name, "webhook refused: private address");
        return error_result(why);
    }
    let body = serde_json::json!({
        "type": "tool_call", "session_id": session_id, "call_id": call.id, "tool": call.name, "arguments": args,
    })
    .to_string();
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let signature = gwauth::tool_webhook::sign(signing.expose_secret().as_bytes(), now_s, body.as_bytes());
    let method = reqwest::Method::from_bytes(hook.method.as_str().as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut req = super::egress::client(allow_private)
        .request(method, url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(gwauth::tool_webhook::HEADER, signature)
        .header("x-switchboard-session", session_id);
    for (header, name) in &hook.headers {
        if let Some(value) = secrets.by_name.get(name) {
            req = req.header(header.as_str(), value.expose_secret());
        }
    }
    let started = Instant::now();
    let answer = tokio::time::timeout(hook.timeout(), send(req.body(body))).await;
    let ms = started.elapsed().as_millis() as u64;
    match answer {
        Ok(Ok(text)) => {
            tracing::info!(tool = %call.name, ms, "webhook tool answered");
            text
        }
        Ok(Err(why)) => {
            tracing::warn!(tool = %call.name, ms, %why, "webhook tool failed");
            error_result(&why)
        }
        Err(_) => {
            tracing::warn!(tool = %call.name, ms, "webhook tool timed out");
            error_result(&format!("the tool did not answer within {} ms", hook.timeout().as_millis()))
        }
    }
}

/// Sends and reads a bounded answer; `Err` says why, without the URL's query or any header.
async fn send(req: reqwest::RequestBuilder) -> Result<String, String> {
    let mut resp = req.send().await.map_err(|e| {
        if e.is_connect() {
            "the tool's service could not be reached".to_string()
        } else {
            "the request to the tool's service failed".to_string()
        }
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("the tool's service answered {}", status.as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| "the tool's answer was cut off".to_string())? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("the tool's answer is larger than {} KiB", MAX_ANSWER_BYTES / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).map_err(|_| "the tool's answer is not UTF-8 text".to_string())?;
    Ok(if text.trim().is_empty() { r#"{"ok":true}"#.to_string() } else { text })
}
