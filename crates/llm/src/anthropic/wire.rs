//! Anthropic Messages JSON shapes (protocols/llm.md D2). Unknown fields and event types are
//! ignored; everything optional is optional.

use crate::{Message, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub(super) struct MessagesRequest<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub messages: Vec<Turn>,
    pub stream: bool,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub(super) struct Turn {
    pub role: &'static str,
    pub content: String,
}

impl<'a> MessagesRequest<'a> {
    /// System messages become the top-level `system`; empty turns are left out (Anthropic
    /// rejects empty text blocks) and consecutive same-role turns are joined (older API
    /// versions and compatible gateways require alternation).
    pub(super) fn new(model: &'a str, max_tokens: u32, messages: &[Message]) -> Self {
        let mut system: Option<String> = None;
        let mut turns: Vec<Turn> = Vec::with_capacity(messages.len());
        for m in messages.iter().filter(|m| !m.content.trim().is_empty()) {
            let role = match m.role {
                Role::System => {
                    match &mut system {
                        Some(s) => {
                            s.push_str("\n\n");
                            s.push_str(&m.content);
                        }
                        None => system = Some(m.content.clone()),
                    }
                    continue;
                }
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            match turns.last_mut() {
                Some(last) if last.role == role => {
                    last.content.push_str("\n\n");
                    last.content.push_str(&m.content);
                }
                _ => turns.push(Turn { role, content: m.content.clone() }),
            }
        }
        Self { model, max_tokens, system, messages: turns, stream: true }
    }
}

/// `{"type":"error","error":{"type","message"}}`, as an HTTP body or an SSE `error` event.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorEnvelope {
    #[serde(default)]
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

#[derive(Debug, Deserialize)]
pub(super) struct StartMessage {
    #[serde(default)]
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
pub(super) struct MessageDeltaBody {
    #[serde(default)]
    pub stop_reason: Option<String>,
}

/// `message_start.message.usage` or `message_delta.usage` (output cumulative).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct Usage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
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
        Message { role, content: content.into() }
    }

    #[test]
    fn system_goes_top_level_and_turns_alternate() {
        let req = MessagesRequest::new(
            "claude-haiku-4-5",
            300,
            &[
                m(Role::System, "Be brief."),
                m(Role::Assistant, "Hi, how can I help?"),
                m(Role::User, "hello"),
                m(Role::User, "  "),
                m(Role::User, "are you there"),
                m(Role::System, "Speak English."),
            ],
        );
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
        let none = MessagesRequest::new("m", 1, &[m(Role::User, "hi")]);
        assert!(serde_json::to_value(&none).unwrap().get("system").is_none());
    }
}
