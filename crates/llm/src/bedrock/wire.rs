//! ConverseStream JSON shapes (protocols/aws-azure.md A4). Event payloads are the event's
//! members without a wrapper; unknown fields (the `p` padding, `metrics`, `trace`) are ignored.

use super::OPENING;
use crate::{Message, Role, ToolChoice, Tools};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConverseRequest<'a> {
    pub messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
}

#[derive(Debug, Serialize)]
pub(super) struct Turn<'a> {
    pub role: &'static str,
    pub content: Vec<Block<'a>>,
}

#[derive(Debug, Serialize)]
pub(super) struct Text<'a> {
    pub text: &'a str,
}

/// A `ContentBlock` union member (botocore bedrock-runtime `ContentBlock`): `{"text"}`,
/// `{"toolUse": {toolUseId, name, input}}`, `{"toolResult": {toolUseId, content}}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum Block<'a> {
    Text(Cow<'a, str>),
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolUse<'a> {
    pub tool_use_id: &'a str,
    pub name: &'a str,
    pub input: Value,
}

/// `ToolResultBlock {toolUseId, content: [{text} | {json}], status?}`; `status` is left out
/// (AWS documents it for Anthropic models only).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolResult<'a> {
    pub tool_use_id: &'a str,
    pub content: Vec<ResultContent<'a>>,
}

/// A JSON object result as `json`, anything else as `text`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum ResultContent<'a> {
    Text(&'a str),
    Json(Value),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InferenceConfig {
    pub max_tokens: u32,
}

/// `toolConfig {tools: [{toolSpec: {name, description?, inputSchema: {json}}}], toolChoice?}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolConfig<'a> {
    pub tools: Vec<ToolEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Choice<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolEntry<'a> {
    pub tool_spec: ToolSpecWire<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolSpecWire<'a> {
    pub name: &'a str,
    /// At least one character when present.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    pub input_schema: Schema<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct Schema<'a> {
    pub json: &'a Value,
}

/// `toolChoice`: `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name"}}`; Converse has no "none"
/// (and no switch for parallel calls).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum Choice<'a> {
    Auto {},
    Any {},
    Tool { name: &'a str },
}

impl<'a> ConverseRequest<'a> {
    /// System messages to `system`; the rest as alternating turns that start with the user
    /// (blank messages dropped: Converse refuses blank text blocks). Calls are `toolUse` blocks
    /// of the assistant's turn, results `toolResult` blocks of a user turn. `ToolChoice::None`
    /// leaves the tools out; without tools, calls and results go as text (Converse refuses tool
    /// blocks without a `toolConfig`).
    pub(super) fn new(messages: &'a [Message], max_tokens: Option<u32>, tools: Tools<'a>) -> Self {
        let tool_config = ToolConfig::of(&tools);
        let mut system = Vec::new();
        let mut turns: Vec<Turn<'a>> = Vec::with_capacity(messages.len() + 1);
        for m in messages {
            let role = match m.role {
                Role::System if !m.content.trim().is_empty() => {
                    system.push(Text { text: &m.content });
                    continue;
                }
                Role::System => continue,
                Role::User | Role::Tool => "user",
                Role::Assistant => "assistant",
            };
            let blocks = blocks(m, messages, tool_config.is_some());
            if blocks.is_empty() {
                continue;
            }
            if turns.is_empty() && role == "assistant" {
                turns.push(opening());
            }
            match turns.last_mut() {
                Some(last) if last.role == role => last.content.extend(blocks),
                _ => turns.push(Turn { role, content: blocks }),
            }
        }
        if turns.is_empty() {
            turns.push(opening());
        }
        Self {
            messages: turns,
            system,
            inference_config: max_tokens.map(|max_tokens| InferenceConfig { max_tokens }),
            tool_config,
        }
    }
}

fn opening<'a>() -> Turn<'a> {
    Turn { role: "user", content: vec![Block::Text(Cow::Borrowed(OPENING))] }
}

impl<'a> ToolConfig<'a> {
    fn of(tools: &Tools<'a>) -> Option<Self> {
        let tool_choice = match tools.choice {
            _ if tools.is_empty() => return None,
            Some(ToolChoice::None) => return None,
            Some(ToolChoice::Auto) => Some(Choice::Auto {}),
            Some(ToolChoice::Required) => Some(Choice::Any {}),
            Some(ToolChoice::Function(name)) => Some(Choice::Tool { name }),
            None => None,
        };
        let entry = |t: &'a crate::ToolSpec| ToolEntry {
            tool_spec: ToolSpecWire {
                name: &t.name,
                description: &t.description,
                input_schema: Schema { json: &t.parameters },
            },
        };
        Some(Self { tools: tools.specs.iter().map(entry).collect(), tool_choice })
    }
}

/// The blocks one message contributes: its text (unless blank), then its calls; a result's
/// `toolResult`. With `tools` off, everything as text.
fn blocks<'a>(m: &'a Message, conversation: &'a [Message], tools: bool) -> Vec<Block<'a>> {
    let text = |t: Cow<'a, str>| (!t.trim().is_empty()).then_some(Block::Text(t));
    if !tools {
        return text(m.text_with_tools(conversation)).into_iter().collect();
    }
    if m.role == Role::Tool {
        let content = match serde_json::from_str::<Value>(&m.content) {
            Ok(v @ Value::Object(_)) => ResultContent::Json(v),
            // Converse refuses blank text blocks.
            _ if m.content.trim().is_empty() => ResultContent::Text("(no result)"),
            _ => ResultContent::Text(&m.content),
        };
        let id = m.tool_call_id.as_deref().unwrap_or_default();
        return vec![Block::ToolResult(ToolResult { tool_use_id: id, content: vec![content] })];
    }
    let calls = m
        .tool_calls
        .iter()
        .map(|c| Block::ToolUse(ToolUse { tool_use_id: &c.id, name: &c.name, input: c.arguments_object() }));
    text(Cow::Borrowed(&m.content)).into_iter().chain(calls).collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockStart {
    pub content_block_index: u32,
    #[serde(default)]
    pub start: Option<Start>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Start {
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

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Delta {
    pub text: Option<String>,
    pub tool_use: Option<ToolUseDelta>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ToolUseDelta {
    pub input: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlockStop {
    pub content_block_index: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct MessageStop {
    pub stop_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Metadata {
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ToolCall, ToolSpec};
    use serde_json::json;

    fn tool_history() -> Vec<Message> {
        let call = |id: &str, args: &str| ToolCall::new(id, "order_status", args);
        vec![
            Message::assistant("Hi!"),
            Message::user("order status 4217 and 99"),
            Message::assistant_calls("", vec![call("tooluse_1", r#"{"order_id":"4217"}"#), call("tooluse_2", "{}")]),
            Message::tool_result("tooluse_1", r#"{"status":"shipped"}"#),
            Message::tool_result("tooluse_2", "lost"),
        ]
    }

    #[test]
    fn tool_config_and_blocks() {
        let specs = [ToolSpec {
            name: "order_status".into(),
            description: "Look up an order".into(),
            parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}}),
        }];
        let history = tool_history();
        let forced = ToolChoice::Function("order_status".into());
        let v = serde_json::to_value(ConverseRequest::new(
            &history,
            None,
            Tools { specs: &specs, choice: Some(&forced), parallel: Some(false) },
        ))
        .unwrap();
        assert_eq!(
            v["toolConfig"],
            json!({
                "tools": [{"toolSpec": {"name": "order_status", "description": "Look up an order", "inputSchema": {"json": specs[0].parameters}}}],
                "toolChoice": {"tool": {"name": "order_status"}}
            })
        );
        assert_eq!(
            v["messages"],
            json!([
                {"role": "user", "content": [{"text": OPENING}]},
                {"role": "assistant", "content": [{"text": "Hi!"}]},
                {"role": "user", "content": [{"text": "order status 4217 and 99"}]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "order_status", "input": {"order_id": "4217"}}},
                    {"toolUse": {"toolUseId": "tooluse_2", "name": "order_status", "input": {}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"status": "shipped"}}]}},
                    {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "lost"}]}}
                ]}
            ])
        );
        let choice = |c: Option<&ToolChoice>| {
            let tools = Tools { specs: &specs, choice: c, parallel: None };
            serde_json::to_value(ConverseRequest::new(&history, None, tools)).unwrap()
        };
        assert_eq!(choice(Some(&ToolChoice::Auto))["toolConfig"]["toolChoice"], json!({"auto": {}}));
        assert_eq!(choice(Some(&ToolChoice::Required))["toolConfig"]["toolChoice"], json!({"any": {}}));
        assert!(choice(None)["toolConfig"].get("toolChoice").is_none());
        // No "none" in Converse: the tools are left out and the history goes as text.
        let none = choice(Some(&ToolChoice::None));
        assert!(none.get("toolConfig").is_none(), "{none}");
        assert_eq!(
            none["messages"][4]["content"],
            json!([{"text": "(result of order_status: {\"status\":\"shipped\"})"}, {"text": "(result of order_status: lost)"}])
        );
    }

    #[test]
    fn turns_alternate_and_start_with_the_user() {
        let m = |role, c: &str| Message::new(role, c);
        let messages = [
            m(Role::System, "Be brief."),
            m(Role::Assistant, "Hi, how can I help?"),
            m(Role::User, "hours"),
            m(Role::User, "please"),
            m(Role::Assistant, "  "),
        ];
        let v = serde_json::to_value(ConverseRequest::new(&messages, Some(64), Tools::default())).unwrap();
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
