//! Anthropic Messages JSON shapes (protocols/llm.md D2). Unknown fields and event types are
//! ignored; everything optional is optional.

use crate::{Message, Role, ToolChoice, ToolSpec, Tools};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize)]
pub(super) struct MessagesRequest<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Choice<'a>>,
    pub stream: bool,
}

/// One turn: plain text as a string (the simplest accepted shape), or content blocks once a
/// tool call or result is in it.
#[derive(Debug, PartialEq, Serialize)]
pub(super) struct Turn<'a> {
    pub role: &'static str,
    pub content: Content<'a>,
}

#[derive(Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub(super) enum Content<'a> {
    Text(String),
    Blocks(Vec<OutBlock<'a>>),
}

/// A request content block (anthropic-sdk-python `TextBlockParam`, `ToolUseBlockParam`
/// {id, name, input: object}, `ToolResultBlockParam` {tool_use_id, content: str | blocks}).
#[derive(Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OutBlock<'a> {
    Text {
        text: String,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        content: &'a str,
    },
}

/// `ToolParam`: `{name, description?, input_schema}`.
#[derive(Debug, Serialize)]
pub(super) struct ToolDef<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    pub input_schema: &'a Value,
}

impl<'a> ToolDef<'a> {
    fn of(spec: &'a ToolSpec) -> Self {
        Self { name: &spec.name, description: &spec.description, input_schema: &spec.parameters }
    }
}

/// `tool_choice` (anthropic-sdk-python `ToolChoiceAutoParam`/`AnyParam`/`ToolParam` with
/// `disable_parallel_tool_use`, `ToolChoiceNoneParam` with only its type).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Choice<'a> {
    Auto {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

impl<'a> Choice<'a> {
    /// `None` when the request says nothing the default (`auto`, parallel allowed) does not.
    fn of(tools: &Tools<'a>) -> Option<Self> {
        let disable_parallel_tool_use = tools.parallel.map(|p| !p);
        Some(match tools.choice {
            Some(ToolChoice::None) => Self::None,
            Some(ToolChoice::Required) => Self::Any { disable_parallel_tool_use },
            Some(ToolChoice::Function(name)) => Self::Tool { name, disable_parallel_tool_use },
            Some(ToolChoice::Auto) => Self::Auto { disable_parallel_tool_use },
            None => Self::Auto { disable_parallel_tool_use: Some(disable_parallel_tool_use?) },
        })
    }
}

impl<'a> MessagesRequest<'a> {
    /// System messages become the top-level `system`; empty turns are left out (Anthropic
    /// rejects empty text blocks) and consecutive same-role turns are joined (older API
    /// versions and compatible gateways require alternation). Tool results are `tool_result`
    /// blocks of a user turn, consecutive ones in one turn and before its text, as Anthropic
    /// requires. Without tools offered, calls and results go as text (Anthropic refuses tool
    /// blocks in a request that defines no tools).
    pub(super) fn new(model: &'a str, max_tokens: u32, messages: &'a [Message], tools: Tools<'a>) -> Self {
        let mut system: Option<String> = None;
        let mut turns: Vec<(&'static str, Vec<OutBlock<'a>>)> = Vec::with_capacity(messages.len());
        for m in messages {
            let role = match m.role {
                Role::System if !m.content.trim().is_empty() => {
                    match &mut system {
                        Some(s) => {
                            s.push_str("\n\n");
                            s.push_str(&m.content);
                        }
                        None => system = Some(m.content.clone()),
                    }
                    continue;
                }
                Role::System => continue,
                Role::User | Role::Tool => "user",
                Role::Assistant => "assistant",
            };
            let blocks = blocks(m, messages, !tools.is_empty());
            if blocks.is_empty() {
                continue;
            }
            match turns.last_mut() {
                Some((last, content)) if *last == role => content.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }
        let messages = turns.into_iter().map(|(role, blocks)| Turn { role, content: Content::of(blocks) }).collect();
        let defs = tools.specs.iter().map(ToolDef::of).collect();
        let tool_choice = if tools.is_empty() { None } else { Choice::of(&tools) };
        Self { model, max_tokens, system, messages, tools: defs, tool_choice, stream: true }
    }
}

/// The blocks one message contributes: its text (unless blank), then its calls; a result's
/// `tool_result`. With `tools` off, everything as text.
fn blocks<'a>(m: &'a Message, conversation: &'a [Message], tools: bool) -> Vec<OutBlock<'a>> {
    if !tools {
        let text = m.text_with_tools(conversation);
        return match text.trim().is_empty() {
            true => Vec::new(),
            false => vec![OutBlock::Text { text: text.into_owned() }],
        };
    }
    if m.role == Role::Tool {
        let id = m.tool_call_id.as_deref().unwrap_or_default();
        return vec![OutBlock::ToolResult { tool_use_id: id, content: &m.content }];
    }
    let text = (!m.content.trim().is_empty()).then(|| OutBlock::Text { text: m.content.clone() });
    let calls =
        m.tool_calls.iter().map(|c| OutBlock::ToolUse { id: &c.id, name: &c.name, input: c.arguments_object() });
    text.into_iter().chain(calls).collect()
}

impl<'a> Content<'a> {
    /// Text-only turns as one string, joined by blank lines.
    fn of(blocks: Vec<OutBlock<'a>>) -> Self {
        if blocks.iter().all(|b| matches!(b, OutBlock::Text { .. })) {
            let texts: Vec<String> = blocks
                .into_iter()
                .filter_map(|b| match b {
                    OutBlock::Text { text } => Some(text),
                    _ => None,
                })
                .collect();
            return Content::Text(texts.join("\n\n"));
        }
        Content::Blocks(blocks)
    }
}

/// `{"type":"error","error":{"type","message"}}`, as an HTTP body or an SSE `error` event.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// One stream event; the JSON `type` equals the SSE event name.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<Usage>,
    },
    MessageStop,
    Error {
        #[serde(default)]
        error: ErrorBody,
    },
    /// `ping` and event types added later.
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct StartMessage {
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Option<serde_json::Value>,
    },
    /// `thinking`, `server_tool_use`, …
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    /// `thinking_delta`, `signature_delta`, `citations_delta`, …
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct MessageDeltaBody {
    pub stop_reason: Option<String>,
}

/// `message_start.message.usage` or `message_delta.usage` (output cumulative).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(super) struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
}

impl Usage {
    /// All prompt tokens: uncached plus cache writes and reads (Anthropic counts them apart;
    /// billing them all as input errs toward the invoice, never below it).
    pub(super) fn total_input(&self) -> Option<u64> {
        let input = self.input_tokens?;
        // Saturating: the counts are the provider's numbers, and u64::MAX + 1 must not panic.
        Some(
            input
                .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
                .saturating_add(self.cache_read_input_tokens.unwrap_or(0)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolCall;
    use serde_json::json;

    #[test]
    fn huge_cache_counts_saturate() {
        // Found by the `llm_wire` fuzz harness's hostile inputs: input plus cache tokens overflowed u64.
        let u: Usage = serde_json::from_str(
            r#"{"input_tokens":18446744073709551615,"cache_creation_input_tokens":1,"cache_read_input_tokens":1}"#,
        )
        .unwrap();
        assert_eq!(u.total_input(), Some(u64::MAX));
    }

    fn m(role: Role, content: &str) -> Message {
        Message::new(role, content)
    }

    #[test]
    fn system_goes_top_level_and_turns_alternate() {
        let messages = [
            m(Role::System, "Be brief."),
            m(Role::Assistant, "Hi, how can I help?"),
            m(Role::User, "hello"),
            m(Role::User, "  "),
            m(Role::User, "are you there"),
            m(Role::System, "Speak English."),
        ];
        let req = MessagesRequest::new("claude-haiku-4-5", 300, &messages, Tools::default());
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "model": "claude-haiku-4-5",
                "max_tokens": 300,
                "system": "Be brief.\n\nSpeak English.",
                "messages": [
                    {"role": "assistant", "content": "Hi, how can I help?"},
                    {"role": "user", "content": "hello\n\nare you there"}
                ],
                "stream": true
            })
        );
        let hi = [m(Role::User, "hi")];
        let none = MessagesRequest::new("m", 1, &hi, Tools::default());
        assert!(serde_json::to_value(&none).unwrap().get("system").is_none());
    }

    fn order_status() -> ToolSpec {
        ToolSpec {
            name: "order_status".into(),
            description: "Look up an order".into(),
            parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}}),
        }
    }

    fn tool_history() -> Vec<Message> {
        let call = |id: &str, args: &str| ToolCall::new(id, "order_status", args);
        vec![
            Message::user("order status 4217 and 99"),
            Message::assistant_calls(
                "Let me check.",
                vec![call("toolu_1", r#"{"order_id":"4217"}"#), call("toolu_2", "not json")],
            ),
            Message::tool_result("toolu_1", "shipped"),
            Message::tool_result("toolu_2", ""),
            Message::user("thanks"),
        ]
    }

    #[test]
    fn tools_calls_and_results_as_blocks() {
        let specs = [order_status()];
        let history = tool_history();
        let tools = Tools { specs: &specs, choice: None, parallel: Some(false) };
        let v = serde_json::to_value(MessagesRequest::new("m", 10, &history, tools)).unwrap();
        assert_eq!(
            v["tools"],
            json!([{"name": "order_status", "description": "Look up an order", "input_schema": specs[0].parameters}])
        );
        assert_eq!(v["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
        assert_eq!(
            v["messages"],
            json!([
                {"role": "user", "content": "order status 4217 and 99"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "order_status", "input": {"order_id": "4217"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "order_status", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"},
                    {"type": "tool_result", "tool_use_id": "toolu_2"},
                    {"type": "text", "text": "thanks"}
                ]}
            ])
        );
    }

    #[test]
    fn tool_choices() {
        let specs = [order_status()];
        let choice = |choice: Option<&ToolChoice>, parallel| {
            let hi = [Message::user("hi")];
            let req = MessagesRequest::new("m", 1, &hi, Tools { specs: &specs, choice, parallel });
            serde_json::to_value(req).unwrap().get("tool_choice").cloned()
        };
        assert_eq!(choice(None, None), None);
        assert_eq!(choice(None, Some(true)), Some(json!({"type": "auto", "disable_parallel_tool_use": false})));
        assert_eq!(choice(Some(&ToolChoice::Auto), None), Some(json!({"type": "auto"})));
        assert_eq!(choice(Some(&ToolChoice::Required), None), Some(json!({"type": "any"})));
        assert_eq!(choice(Some(&ToolChoice::None), Some(false)), Some(json!({"type": "none"})));
        let forced = ToolChoice::Function("order_status".into());
        assert_eq!(
            choice(Some(&forced), Some(false)),
            Some(json!({"type": "tool", "name": "order_status", "disable_parallel_tool_use": true}))
        );
    }

    /// No tools offered: no tool fields, and the history's calls and results as text.
    #[test]
    fn without_tools_the_history_is_text() {
        let history = tool_history();
        let v = serde_json::to_value(MessagesRequest::new("m", 10, &history, Tools::default())).unwrap();
        assert!(v.get("tools").is_none() && v.get("tool_choice").is_none(), "{v}");
        assert_eq!(
            v["messages"],
            json!([
                {"role": "user", "content": "order status 4217 and 99"},
                {"role": "assistant", "content": "Let me check.\n(called order_status with {\"order_id\":\"4217\"})\n(called order_status with not json)"},
                {"role": "user", "content": "(result of order_status: shipped)\n\n(result of order_status: )\n\nthanks"}
            ])
        );
    }
}
