//! What an agent may do besides talk: the tools it declares, stored with the agent and checked
//! when it is registered (so a call never starts with a tool it cannot run). How a tool runs
//! during a call lives in the `session` crate; this is the declaration and its rules.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// Most tools one agent may declare (each one is sent with every LLM request of its calls).
pub const MAX_TOOLS: usize = 32;
/// A webhook that has not answered by then becomes an error result the model can talk about.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 5_000;
const WEBHOOK_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=30_000;
const MAX_SCHEMA_BYTES: usize = 16 * 1024;
/// The vault provider under which an org keeps its webhook secrets (`PUT /api/credentials`).
pub const WEBHOOK_VAULT_PROVIDER: &str = "webhook";
/// The vault name of the secret every webhook request is signed with.
pub const SIGNING_SECRET_NAME: &str = "signing";

/// A function the agent's model may call, and what runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AgentTool {
    /// What the model calls it: 1–64 of `A-Z a-z 0-9 _ -`, unique within the agent.
    pub name: String,
    /// When to use it, for the model.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of a webhook's arguments (an object schema). Built-ins have fixed arguments
    /// and refuse this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub parameters: Option<serde_json::Value>,
    /// Said while the tool runs ("One moment, let me check that."), so the caller is not left
    /// in silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler: Option<String>,
    pub run: ToolRun,
}

/// What runs a tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolRun {
    /// An HTTPS request to the org's own service, signed (see `docs/tools.md`).
    Webhook(Webhook),
    /// Say a closing line, then hang up (through the carrier's REST API on carrier calls).
    EndCall {
        #[serde(default, rename = "closingLine", skip_serializing_if = "Option::is_none")]
        closing_line: Option<String>,
    },
    /// Hand the call to a phone number (E.164) or SIP URI through the carrier; the session
    /// ends with reason `transferred`. The target is fixed here, never chosen by the model.
    TransferCall { to: String },
    /// Press keys on the line (the model gives `digits`), on carriers that support it.
    SendDtmf {},
}

/// Where and how a webhook tool is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// `https://…`; plain `http://` only to a loopback host (local development and tests).
    pub url: String,
    #[serde(default)]
    pub method: WebhookMethod,
    /// Header name → the name of a secret the org saved in its vault under provider `webhook`
    /// (the header's value is that secret, verbatim). Values never appear in the agent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// 100–30000 ms; default 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl Webhook {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_WEBHOOK_TIMEOUT_MS))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    #[default]
    Post,
    Put,
    Patch,
}

impl WebhookMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }
}

/// Why an agent's tools were refused at registration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ToolDeclError {
    #[error("an agent may declare at most {MAX_TOOLS} tools")]
    TooMany,
    #[error("tool name {0:?} must be 1-64 characters of A-Z, a-z, 0-9, _ or -")]
    BadName(String),
    #[error("tool {0:?} is declared twice")]
    Duplicate(String),
    #[error("tool {0}: {1}")]
    BadParameters(String, &'static str),
    #[error("tool {0}: {1}")]
    BadWebhook(String, String),
    #[error("tool {0}: timeoutMs must be between 100 and 30000")]
    BadTimeout(String),
}

impl ToolDeclError {
    /// The API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooMany => "TOO_MANY_TOOLS",
            Self::BadName(_) => "TOOL_NAME_INVALID",
            Self::Duplicate(_) => "TOOL_NAME_DUPLICATE",
            Self::BadParameters(..) => "TOOL_PARAMETERS_INVALID",
            Self::BadWebhook(..) => "WEBHOOK_INVALID",
            Self::BadTimeout(_) => "TOOL_TIMEOUT_INVALID",
        }
    }
}

/// The structural rules every tool list must meet. What needs the org (its vault secrets) or
/// a carrier's rules (transfer targets) is checked by the server beside this.
pub fn validate_tools(tools: &[AgentTool]) -> Result<(), ToolDeclError> {
    if tools.len() > MAX_TOOLS {
        return Err(ToolDeclError::TooMany);
    }
    for (i, t) in tools.iter().enumerate() {
        if !valid_name(&t.name) {
            return Err(ToolDeclError::BadName(t.name.clone()));
        }
        if tools[..i].iter().any(|o| o.name == t.name) {
            return Err(ToolDeclError::Duplicate(t.name.clone()));
        }
        validate_parameters(t)?;
        if let ToolRun::Webhook(w) = &t.run {
            validate_webhook(&t.name, w)?;
        }
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn validate_parameters(t: &AgentTool) -> Result<(), ToolDeclError> {
    let bad = |why| Err(ToolDeclError::BadParameters(t.name.clone(), why));
    match (&t.run, &t.parameters) {
        (ToolRun::Webhook(_), None) => Ok(()),
        (ToolRun::Webhook(_), Some(schema)) => {
            if schema.get("type").and_then(|v| v.as_str()) != Some("object") {
                return bad("parameters must be a JSON Schema with \"type\": \"object\"");
            }
            if schema.to_string().len() > MAX_SCHEMA_BYTES {
                return bad("parameters must be at most 16 KiB of JSON");
            }
            Ok(())
        }
        (_, Some(_)) => bad("built-in tools have fixed parameters; leave parameters out"),
        (_, None) => Ok(()),
    }
}

fn validate_webhook(name: &str, w: &Webhook) -> Result<(), ToolDeclError> {
    let bad = |why: String| Err(ToolDeclError::BadWebhook(name.to_string(), why));
    let Ok(url) = url::Url::parse(&w.url) else {
        return bad("url is not an absolute URL".into());
    };
    if !url.username().is_empty() || url.password().is_some() {
        return bad("url must not carry credentials: put them in headers from the vault".into());
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return bad("url must be https:// (http:// only to a loopback host)".into()),
    }
    for (header, secret) in &w.headers {
        let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !token(header) || !token(secret) {
            return bad(format!("header {header:?}: names must be a header token and a vault secret name"));
        }
    }
    if w.timeout_ms.is_some_and(|t| !WEBHOOK_TIMEOUT_RANGE_MS.contains(&t)) {
        return Err(ToolDeclError::BadTimeout(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Vec<AgentTool> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn declarations_round_trip_in_the_documented_shape() {
        let tools = parse(json!([
            {"name":"order_status","description":"Look up an order","parameters":{"type":"object","properties":{"order_id":{"type":"string"}}},
             "filler":"One moment.","run":{"type":"webhook","url":"https://crm.example/tools","headers":{"Authorization":"crm-token"},"timeoutMs":2000}},
            {"name":"end_call","run":{"type":"end_call","closingLine":"Bye now."}},
            {"name":"transfer_call","run":{"type":"transfer_call","to":"+15550100"}},
            {"name":"send_dtmf","run":{"type":"send_dtmf"}}
        ]));
        assert_eq!(validate_tools(&tools), Ok(()));
        let ToolRun::Webhook(w) = &tools[0].run else { panic!("webhook") };
        assert_eq!((w.method, w.timeout()), (WebhookMethod::Post, Duration::from_millis(2000)));
        assert_eq!(tools[1].run, ToolRun::EndCall { closing_line: Some("Bye now.".into()) });
        let back: Vec<AgentTool> = serde_json::from_value(serde_json::to_value(&tools).unwrap()).unwrap();
        assert_eq!(back, tools);
    }

    #[test]
    fn bad_declarations_get_typed_refusals() {
        let hook = |url: &str| json!({"name":"t","run":{"type":"webhook","url":url}});
        let code = |v| validate_tools(&parse(v)).unwrap_err().code();
        assert_eq!(code(json!([{"name":"has space","run":{"type":"send_dtmf"}}])), "TOOL_NAME_INVALID");
        assert_eq!(code(json!([{"name":"","run":{"type":"send_dtmf"}}])), "TOOL_NAME_INVALID");
        assert_eq!(
            code(json!([{"name":"a","run":{"type":"send_dtmf"}},{"name":"a","run":{"type":"end_call"}}])),
            "TOOL_NAME_DUPLICATE"
        );
        assert_eq!(code(json!([hook("http://crm.example/x")])), "WEBHOOK_INVALID");
        assert_eq!(code(json!([hook("https://user:pw@crm.example/x")])), "WEBHOOK_INVALID");
        assert_eq!(code(json!([hook("ftp://crm.example/x")])), "WEBHOOK_INVALID");
        assert_eq!(code(json!([hook("not a url")])), "WEBHOOK_INVALID");
        assert_eq!(validate_tools(&parse(json!([hook("http://127.0.0.1:9/x")]))), Ok(()));
        assert_eq!(
            code(json!([{"name":"t","run":{"type":"webhook","url":"https://a.example","timeoutMs":50}}])),
            "TOOL_TIMEOUT_INVALID"
        );
        assert_eq!(
            code(
                json!([{"name":"t","run":{"type":"webhook","url":"https://a.example","headers":{"X-Key":"bad name!"}}}])
            ),
            "WEBHOOK_INVALID"
        );
        assert_eq!(
            code(
                json!([{"name":"t","parameters":{"type":"string"},"run":{"type":"webhook","url":"https://a.example"}}])
            ),
            "TOOL_PARAMETERS_INVALID"
        );
        assert_eq!(
            code(json!([{"name":"t","parameters":{"type":"object"},"run":{"type":"end_call"}}])),
            "TOOL_PARAMETERS_INVALID"
        );
        let many: Vec<_> =
            (0..=MAX_TOOLS).map(|i| json!({"name":format!("t{i}"),"run":{"type":"send_dtmf"}})).collect();
        assert_eq!(code(json!(many)), "TOO_MANY_TOOLS");
        assert!(serde_json::from_value::<Vec<AgentTool>>(json!([{"name":"t","run":{"type":"teleport"}}])).is_err());
    }
}
