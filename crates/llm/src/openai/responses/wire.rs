//! Responses API JSON shapes (protocols/llm-more.md E1). Only what a voice turn needs is read;
//! the ~55 other event types and unknown fields (`obfuscation`, `logprobs`) are ignored.

use crate::openai::request::OfferedTools;
use crate::{LlmRequest, Message, Role, ToolChoice, ToolSpec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub(super) struct ResponsesRequest<'a> {
    pub model: &'a str,
    pub input: Vec<InputItem<'a>>,
    pub stream: bool,
    /// The session keeps the history; nothing is chained by `previous_response_id`.
    pub store: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(flatten)]
    pub tools: OfferedTools<FunctionTool<'a>, WireToolChoice<'a>>,
}

impl<'a> ResponsesRequest<'a> {
    /// `req` for `model`; the tool fields only when tools are offered.
    pub(super) fn new(model: &'a str, req: &LlmRequest<'a>) -> Self {
        Self {
            model,
            input: req.messages.iter().flat_map(InputItem::of).collect(),
            stream: true,
            store: false,
            max_output_tokens: req.max_tokens,
            tools: OfferedTools::new(&req.tools, FunctionTool::from, WireToolChoice::from, true),
        }
    }
}

/// One input item. A `system` message stays in place rather than moving to `instructions`, so a
/// mid-conversation system note keeps its position; an assistant turn's calls follow its text as
/// `function_call` items, and a result is a `function_call_output` (E1).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum InputItem<'a> {
    Message { role: Role, content: &'a str },
    FunctionCall { call_id: &'a str, name: &'a str, arguments: &'a str },
    FunctionCallOutput { call_id: &'a str, output: &'a str },
}

impl<'a> InputItem<'a> {
    /// The items of one message: a tool result is one output; an assistant turn its text (if
    /// any) then its calls.
    fn of(m: &'a Message) -> Vec<Self> {
        if m.role == Role::Tool {
            let call_id = m.tool_call_id.as_deref().unwrap_or_default();
            return vec![Self::FunctionCallOutput { call_id, output: &m.content }];
        }
        let text = (m.tool_calls.is_empty() || !m.content.is_empty())
            .then_some(Self::Message { role: m.role, content: &m.content });
        let calls =
            m.tool_calls.iter().map(|c| Self::FunctionCall { call_id: &c.id, name: &c.name, arguments: &c.arguments });
        text.into_iter().chain(calls).collect()
    }
}

/// `{type: "function", name, description, parameters, strict: false}`: flat, not nested under
/// `function` as in Chat Completions. `strict` is sent because Responses defaults it to true,
/// which would refuse schemas with optional properties (OA-PY `function_tool_param.py`).
#[derive(Debug, Serialize)]
pub(super) struct FunctionTool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    pub parameters: &'a serde_json::Value,
    pub strict: bool,
}

impl<'a> From<&'a ToolSpec> for FunctionTool<'a> {
    fn from(t: &'a ToolSpec) -> Self {
        Self { kind: "function", name: &t.name, description: &t.description, parameters: &t.parameters, strict: false }
    }
}

/// `"auto"`, `"none"`, `"required"`, or `{type: "function", name}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum WireToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        name: &'a str,
    },
}

impl<'a> From<&'a ToolChoice> for WireToolChoice<'a> {
    fn from(choice: &'a ToolChoice) -> Self {
        match choice {
            ToolChoice::Auto => Self::Mode("auto"),
            ToolChoice::None => Self::Mode("none"),
            ToolChoice::Required => Self::Mode("required"),
            ToolChoice::Function(name) => Self::Function { kind: "function", name },
        }
    }
}

/// One stream event, by its `type` (equal to the SSE event name).
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub(super) enum Event {
    #[serde(rename = "response.output_text.delta")]
    TextDelta { delta: String },
    #[serde(rename = "response.output_item.added")]
    ItemAdded { item: Item },
    #[serde(rename = "response.function_call_arguments.delta")]
    ArgumentsDelta { item_id: String, delta: String },
    #[serde(rename = "response.function_call_arguments.done")]
    ArgumentsDone { item_id: String, arguments: String },
    #[serde(rename = "response.output_item.done")]
    ItemDone { item: Item },
    #[serde(rename = "response.completed")]
    Completed { response: Response },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: Response },
    #[serde(rename = "response.failed")]
    Failed { response: Response },
    /// Flat (`code`, `message`) in the SDK types; nested under `error` as observed on the wire.
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        error: Option<ErrorBody>,
    },
    #[serde(other)]
    Other,
}

/// An output item: a message, a function call, a reasoning summary, …
#[derive(Debug, Deserialize)]
pub(super) struct Item {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    /// What a `function_call_output` answers; `id` (`fc_…`) is what argument deltas name.
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// The final Response object of a terminal event.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Response {
    pub usage: Option<Usage>,
    pub error: Option<ErrorBody>,
    pub incomplete_details: Option<IncompleteDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub(super) struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct IncompleteDetails {
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ToolCall, Tools};
    use secrecy::SecretString;
    use serde_json::{json, Value};

    fn body(messages: &[Message], tools: Tools<'_>) -> Value {
        let base = url::Url::parse("http://127.0.0.1:9/v1").unwrap();
        let key = SecretString::from("k".to_string());
        let req = LlmRequest { base_url: &base, key: &key, model: "m", messages, max_tokens: None, tools };
        serde_json::to_value(ResponsesRequest::new("m", &req)).unwrap()
    }

    #[test]
    fn calls_and_results_become_function_items() {
        let call = |id: &str| ToolCall::new(id, "lookup", "{}");
        let messages = [
            Message::system("Be brief."),
            Message::user("look it up"),
            Message::assistant_calls("One moment.", vec![call("call_1"), call("call_2")]),
            Message::tool_result("call_1", "found"),
            Message::tool_result("call_2", "\"also\""),
            Message::assistant_calls("", vec![call("call_3")]),
        ];
        let v = body(&messages, Tools::default());
        assert_eq!(
            v["input"],
            json!([
                {"type": "message", "role": "system", "content": "Be brief."},
                {"type": "message", "role": "user", "content": "look it up"},
                {"type": "message", "role": "assistant", "content": "One moment."},
                {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": "{}"},
                {"type": "function_call", "call_id": "call_2", "name": "lookup", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "found"},
                {"type": "function_call_output", "call_id": "call_2", "output": "\"also\""},
                {"type": "function_call", "call_id": "call_3", "name": "lookup", "arguments": "{}"},
            ])
        );
        for field in ["tools", "tool_choice", "parallel_tool_calls"] {
            assert!(v.get(field).is_none(), "{field} without tools");
        }
    }

    #[test]
    fn tools_are_flat_and_not_strict() {
        let specs =
            [ToolSpec { name: "lookup".into(), description: "Find".into(), parameters: crate::empty_object_schema() }];
        let forced = ToolChoice::Function("lookup".into());
        let v = body(&[Message::user("hi")], Tools { specs: &specs, choice: Some(&forced), parallel: Some(false) });
        assert_eq!(
            v["tools"],
            json!([{"type": "function", "name": "lookup", "description": "Find", "parameters": {"type": "object", "properties": {}}, "strict": false}])
        );
        assert_eq!(v["tool_choice"], json!({"type": "function", "name": "lookup"}));
        assert_eq!(v["parallel_tool_calls"], false);
        let required = Tools { specs: &specs, choice: Some(&ToolChoice::Required), parallel: None };
        let v = body(&[Message::user("hi")], required);
        assert_eq!(v["tool_choice"], "required");
        assert!(v.get("parallel_tool_calls").is_none());
    }
}
