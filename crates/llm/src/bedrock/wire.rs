//! ConverseStream JSON shapes (protocols/aws-azure.md A4). Event payloads are the event's
//! members without a wrapper; unknown fields (the `p` padding, `metrics`, `trace`) are ignored.

use super::OPENING;
use crate::{Message, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConverseRequest<'a> {
    pub messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig>,
}

#[derive(Debug, Serialize)]
pub(super) struct Turn<'a> {
    pub role: &'static str,
    pub content: Vec<Text<'a>>,
}

#[derive(Debug, Serialize)]
pub(super) struct Text<'a> {
    pub text: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InferenceConfig {
    pub max_tokens: u32,
}

impl<'a> ConverseRequest<'a> {
    /// System messages to `system`; the rest as alternating turns that start with the user
    /// (blank messages dropped: Converse refuses blank text blocks).
    pub(super) fn new(messages: &'a [Message], max_tokens: Option<u32>) -> Self {
        let mut system = Vec::new();
        let mut turns: Vec<Turn<'a>> = Vec::with_capacity(messages.len() + 1);
        for m in messages.iter().filter(|m| !m.content.trim().is_empty()) {
            let role = match m.role {
                Role::System => {
                    system.push(Text { text: &m.content });
                    continue;
                }
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            if turns.is_empty() && role == "assistant" {
                turns.push(Turn { role: "user", content: vec![Text { text: OPENING }] });
            }
            match turns.last_mut() {
                Some(last) if last.role == role => last.content.push(Text { text: &m.content }),
                _ => turns.push(Turn { role, content: vec![Text { text: &m.content }] }),
            }
        }
        if turns.is_empty() {
            turns.push(Turn { role: "user", content: vec![Text { text: OPENING }] });
        }
        Self { messages: turns, system, inference_config: max_tokens.map(|max_tokens| InferenceConfig { max_tokens }) }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockStart {
    pub content_block_index: u32,
    #[serde(default)]
    pub start: Option<Start>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Start {
    #[serde(default)]
    pub tool_use: Option<ToolUseStart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolUseStart {
    pub tool_use_id: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockDelta {
    pub content_block_index: u32,
    pub delta: Delta,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Delta {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_use: Option<ToolUseDelta>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolUseDelta {
    #[serde(default)]
    pub input: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockStop {
    pub content_block_index: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageStop {
    #[serde(default)]
    pub stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_alternate_and_start_with_the_user() {
        let m = |role, c: &str| Message { role, content: c.into() };
        let messages = [
            m(Role::System, "Be brief."),
            m(Role::Assistant, "Hi, how can I help?"),
            m(Role::User, "hours"),
            m(Role::User, "please"),
            m(Role::Assistant, "  "),
        ];
        let v = serde_json::to_value(ConverseRequest::new(&messages, Some(64))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "messages": [
                    {"role": "user", "content": [{"text": OPENING}]},
                    {"role": "assistant", "content": [{"text": "Hi, how can I help?"}]},
                    {"role": "user", "content": [{"text": "hours"}, {"text": "please"}]}
                ],
                "system": [{"text": "Be brief."}],
                "inferenceConfig": {"maxTokens": 64}
            })
        );
    }
}
