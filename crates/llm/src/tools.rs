//! Function calling, in one provider-neutral shape: the tools an agent offers ([`ToolSpec`],
//! [`Tools`]), the calls a model makes ([`ToolCall`]) and the results that go back
//! ([`Message::tool_result`]). Each adapter translates these into its provider's own protocol
//! (OpenAI `tools`/`tool_calls`, Anthropic `tool_use`/`tool_result`, Gemini
//! `functionCall`/`functionResponse`, Bedrock `toolUse`/`toolResult`).

use crate::{Message, Role};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A function the model may call: the agent's declaration, minus how it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments object (`{"type":"object",…}`).
    #[serde(default = "empty_object_schema")]
    pub parameters: serde_json::Value,
}

/// `{"type":"object","properties":{}}`: a tool that takes no arguments.
pub fn empty_object_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// Whether, and which, tool the model must call. `None` in [`Tools::choice`] leaves the
/// provider's default (`auto` when tools are offered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    /// Offer the tools but forbid calling them (Anthropic and Bedrock have no such mode: the
    /// tools are then left out of the request).
    None,
    Required,
    /// This function and no other.
    Function(String),
}

/// The tools offered with one request. The default offers none, and the request then carries no
/// tool fields at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tools<'a> {
    pub specs: &'a [ToolSpec],
    pub choice: Option<&'a ToolChoice>,
    /// Whether several calls may come in one answer (`None`: the provider's default). Sent only
    /// to providers that have the switch (OpenAI's family, Anthropic's
    /// `disable_parallel_tool_use`).
    pub parallel: Option<bool>,
}

impl Tools<'_> {
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

/// A completed tool call assembled from streamed deltas. `arguments` is the JSON text the model
/// wrote, unparsed: what runs the tool validates it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    /// The provider's opaque signature of the reasoning behind this call (Gemini's
    /// `thoughtSignature`), sent back with the call in the next round so the model keeps its
    /// reasoning; `None` where the provider has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl ToolCall {
    /// A call with no reasoning signature (every provider but Gemini, and Gemini's calls that
    /// came without one).
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self { id: id.into(), name: name.into(), arguments: arguments.into(), signature: None }
    }
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// An assistant turn that called tools (with whatever text it said before them).
    pub fn assistant_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self { tool_calls: calls, ..Self::assistant(content) }
    }

    /// The result of the call `call_id`, as the model is to read it.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self { tool_call_id: Some(call_id.into()), ..Self::new(Role::Tool, content) }
    }

    /// For a [`Role::Tool`] message: the call it answers, looked up in the conversation (Gemini
    /// and the simulators match results by function name).
    pub fn answered_call<'m>(&self, conversation: &'m [Message]) -> Option<&'m ToolCall> {
        let id = self.tool_call_id.as_deref()?;
        conversation.iter().flat_map(|m| &m.tool_calls).find(|c| c.id == id)
    }

    /// The message with its tool calls or result written out as text, for a request that offers
    /// no tools: Anthropic and Bedrock refuse tool blocks in a history without tool definitions
    /// ("Requests which include tool_use or tool_result blocks must define tools", "The
    /// toolConfig field must be defined when using toolUse and toolResult content blocks").
    pub(crate) fn text_with_tools(&self, conversation: &[Message]) -> Cow<'_, str> {
        if self.role == Role::Tool {
            let name = self.answered_call(conversation).map_or("a tool", |c| c.name.as_str());
            return format!("(result of {name}: {})", self.content).into();
        }
        if self.tool_calls.is_empty() {
            return Cow::Borrowed(&self.content);
        }
        let calls = self.tool_calls.iter().map(|c| format!("(called {} with {})", c.name, c.arguments));
        let text: Vec<String> =
            std::iter::once(self.content.clone()).filter(|t| !t.trim().is_empty()).chain(calls).collect();
        text.join("\n").into()
    }
}

impl ToolCall {
    /// The arguments as the JSON object Anthropic, Gemini and Bedrock take (`input`, `args`):
    /// text that is not an object (a model's malformed JSON) becomes `{}`.
    pub(crate) fn arguments_object(&self) -> serde_json::Value {
        match serde_json::from_str::<serde_json::Value>(&self.arguments) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                if !self.arguments.trim().is_empty() {
                    tracing::warn!(tool = %self.name, "tool call arguments are not a JSON object; sent as {{}}");
                }
                serde_json::Value::Object(serde_json::Map::new())
            }
        }
    }
}
