//! OpenAI Chat Completions JSON shapes (protocols/llm.md D1). Unknown fields are ignored
//! (`obfuscation`, `system_fingerprint`, provider extras); everything optional is optional.

use serde::Deserialize;

/// `{"error":{"message","type","param","code"}}`, before streaming or as a mid-stream event.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorEnvelope {
    pub error: Option<serde_json::Value>,
}

impl ErrorEnvelope {
    /// The human message: `error.message`, or `error` itself when a provider sends a string.
    pub(super) fn message(&self) -> Option<&str> {
        match self.error.as_ref()? {
            serde_json::Value::String(s) => Some(s),
            v => v.get("message").and_then(serde_json::Value::as_str),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Chunk {
    pub choices: Option<Vec<Choice>>,
    pub usage: Option<Usage>,
    /// Groq reports usage under `x_groq.usage`.
    pub x_groq: Option<XGroq>,
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct XGroq {
    pub usage: Option<Usage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Choice {
    pub delta: Option<Delta>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Delta {
    pub content: Option<String>,
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ToolCallDelta {
    /// Missing on some compatible servers (older SambaNova): a new `id` then starts a new call.
    pub index: Option<u32>,
    pub id: Option<String>,
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct FunctionDelta {
    pub name: Option<String>,
    pub arguments: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(super) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}
