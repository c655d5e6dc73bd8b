//! The Chat Completions request body (protocols/llm.md D1), shared with Azure: the conversation
//! in OpenAI's message shape and the offered tools, with the quirks of each compatible provider.
//!
//! Messages: an assistant turn that called tools carries
//! `tool_calls: [{id, type: "function", function: {name, arguments}}]` and `content: null` when
//! it said nothing; a result is `{"role": "tool", "tool_call_id", "content"}` (OpenAI's
//! `ChatCompletionAssistantMessageParam` / `ChatCompletionToolMessageParam`). Tools:
//! `tools: [{type: "function", function: {name, description, parameters}}]`, `tool_choice`
//! (`"auto"`, `"none"`, the provider's word for required, or
//! `{type: "function", function: {name}}`) and `parallel_tool_calls`; none of them is sent when no
//! tool is offered.

use crate::compat::{MaxTokensField, ToolQuirks};
use crate::{LlmRequest, Message, Role, ToolCall, ToolChoice, ToolSpec, Tools};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<ChatMessage<'a>>,
    pub stream: bool,
    /// Left out for providers that reject it (Mistral, Fireworks, Cerebras).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// The older name, for providers without `max_completion_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(flatten)]
    pub tools: OfferedTools<FunctionTool<'a>, WireToolChoice<'a>>,
}

/// The tool fields both of OpenAI's request shapes (Chat Completions, Responses) carry under the
/// same names, each in its own wire type; none is sent when no tool is offered.
#[derive(Debug, Serialize)]
pub(crate) struct OfferedTools<T, C> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<C>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
}

impl<T, C> OfferedTools<T, C> {
    /// `offered` in wire types; the parallel switch only where the provider takes the field.
    pub(crate) fn new<'a>(
        offered: &Tools<'a>,
        tool: impl Fn(&'a ToolSpec) -> T,
        choice: impl Fn(&'a ToolChoice) -> C,
        parallel_field: bool,
    ) -> Self {
        let any = !offered.is_empty();
        Self {
            tools: offered.specs.iter().map(tool).collect(),
            tool_choice: offered.choice.filter(|_| any).map(choice),
            parallel_tool_calls: offered.parallel.filter(|_| any && parallel_field),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct StreamOptions {
    pub include_usage: bool,
}

/// One message in OpenAI's shape.
#[derive(Debug, Serialize)]
pub(crate) struct ChatMessage<'a> {
    pub role: Role,
    /// `null` for an assistant turn that only called tools.
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
}

impl<'a> From<&'a Message> for ChatMessage<'a> {
    fn from(m: &'a Message) -> Self {
        let silent_calls = !m.tool_calls.is_empty() && m.content.is_empty();
        Self {
            role: m.role,
            content: (!silent_calls).then_some(m.content.as_str()),
            tool_calls: m.tool_calls.iter().map(WireToolCall::from).collect(),
            tool_call_id: if m.role == Role::Tool { m.tool_call_id.as_deref() } else { None },
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct WireToolCall<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: CalledFunction<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CalledFunction<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

impl<'a> From<&'a ToolCall> for WireToolCall<'a> {
    fn from(c: &'a ToolCall) -> Self {
        Self { id: &c.id, kind: "function", function: CalledFunction { name: &c.name, arguments: &c.arguments } }
    }
}

/// `{type: "function", function: {name, description, parameters}}`.
#[derive(Debug, Serialize)]
pub(crate) struct FunctionTool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionDef<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct FunctionDef<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    pub parameters: &'a serde_json::Value,
}

impl<'a> From<&'a ToolSpec> for FunctionTool<'a> {
    fn from(t: &'a ToolSpec) -> Self {
        let function = FunctionDef { name: &t.name, description: &t.description, parameters: &t.parameters };
        Self { kind: "function", function }
    }
}

/// A mode word, or one named function.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum WireToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

#[derive(Debug, Serialize)]
pub(crate) struct Named<'a> {
    pub name: &'a str,
}

impl<'a> WireToolChoice<'a> {
    fn new(choice: &'a ToolChoice, quirks: &ToolQuirks) -> Self {
        match choice {
            ToolChoice::Auto => Self::Mode("auto"),
            ToolChoice::None => Self::Mode("none"),
            ToolChoice::Required => Self::Mode(quirks.required_choice),
            ToolChoice::Function(name) => Self::Function { kind: "function", function: Named { name } },
        }
    }
}

/// How one provider takes a request: usage asked for when `include_usage`, the token cap under
/// `max_tokens_field`, tool fields as `tools` says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    pub include_usage: bool,
    pub max_tokens_field: MaxTokensField,
    pub tools: ToolQuirks,
}

/// A streaming Chat Completions body for `req` in `dialect`.
pub(crate) fn chat_body<'a>(model: &'a str, req: &LlmRequest<'a>, dialect: Dialect) -> ChatRequest<'a> {
    let (max_completion_tokens, max_tokens) = match dialect.max_tokens_field {
        MaxTokensField::MaxCompletionTokens => (req.max_tokens, None),
        MaxTokensField::MaxTokens => (None, req.max_tokens),
    };
    ChatRequest {
        model,
        messages: req.messages.iter().map(ChatMessage::from).collect(),
        stream: true,
        stream_options: dialect.include_usage.then_some(StreamOptions { include_usage: true }),
        max_completion_tokens,
        max_tokens,
        tools: OfferedTools::new(
            &req.tools,
            FunctionTool::from,
            |c| WireToolChoice::new(c, &dialect.tools),
            dialect.tools.parallel_tool_calls,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::{MISTRAL, OPENAI_TOOLS};
    use crate::Tools;
    use secrecy::SecretString;
    use serde_json::{json, Value};

    const DIALECT: Dialect =
        Dialect { include_usage: true, max_tokens_field: MaxTokensField::MaxCompletionTokens, tools: OPENAI_TOOLS };

    fn body(messages: &[Message], tools: Tools<'_>, dialect: Dialect) -> Value {
        let base = url::Url::parse("http://127.0.0.1:9/v1").unwrap();
        let key = SecretString::from("k".to_string());
        let req = LlmRequest { base_url: &base, key: &key, model: "m", messages, max_tokens: None, tools };
        serde_json::to_value(chat_body("m", &req, dialect)).unwrap()
    }

    fn weather() -> ToolSpec {
        ToolSpec {
            name: "get_weather".into(),
            description: "Current weather".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }
    }

    #[test]
    fn calls_and_results_take_openais_message_shape() {
        let call = ToolCall::new("call_1", "get_weather", r#"{"city":"Paris"}"#);
        let messages = [
            Message::user("weather in Paris?"),
            Message::assistant_calls("", vec![call.clone()]),
            Message::assistant_calls("Let me look.", vec![call]),
            Message::tool_result("call_1", "21 degrees"),
        ];
        let v = body(&messages, Tools::default(), DIALECT);
        assert_eq!(v["messages"][0], json!({"role": "user", "content": "weather in Paris?"}));
        let calls = json!([{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]);
        assert_eq!(v["messages"][1], json!({"role": "assistant", "content": null, "tool_calls": calls}));
        assert_eq!(v["messages"][2]["content"], "Let me look.");
        assert_eq!(v["messages"][3], json!({"role": "tool", "content": "21 degrees", "tool_call_id": "call_1"}));
    }

    #[test]
    fn no_tools_no_tool_fields() {
        let v = body(&[Message::user("hi")], Tools::default(), DIALECT);
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["messages", "model", "stream", "stream_options"]);
        // A choice or a parallel switch without tools is not sent either.
        let lone = Tools { specs: &[], choice: Some(&ToolChoice::Required), parallel: Some(false) };
        assert_eq!(body(&[Message::user("hi")], lone, DIALECT), v);
    }

    #[test]
    fn tools_choice_and_parallel_switch() {
        let specs = [weather(), ToolSpec { description: String::new(), ..weather() }];
        let forced = ToolChoice::Function("get_weather".into());
        let tools = Tools { specs: &specs, choice: Some(&forced), parallel: Some(false) };
        let v = body(&[Message::user("hi")], tools, DIALECT);
        assert_eq!(
            v["tools"][0],
            json!({"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
        );
        assert!(v["tools"][1]["function"].get("description").is_none(), "an empty description is left out");
        assert_eq!(v["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));
        assert_eq!(v["parallel_tool_calls"], false);
        for (choice, word) in
            [(ToolChoice::Auto, "auto"), (ToolChoice::None, "none"), (ToolChoice::Required, "required")]
        {
            let v = body(&[Message::user("hi")], Tools { choice: Some(&choice), parallel: None, ..tools }, DIALECT);
            assert_eq!(v["tool_choice"], word);
            assert!(v.get("parallel_tool_calls").is_none());
        }
    }

    #[test]
    fn provider_quirks_shape_the_tool_fields() {
        let specs = [weather()];
        let tools = Tools { specs: &specs, choice: Some(&ToolChoice::Required), parallel: Some(true) };
        let mistral = Dialect { tools: MISTRAL.tools, ..DIALECT };
        assert_eq!(body(&[Message::user("hi")], tools, mistral)["tool_choice"], "any");
        let cerebras = Dialect { tools: crate::compat::CEREBRAS.tools, ..DIALECT };
        let v = body(&[Message::user("hi")], tools, cerebras);
        assert_eq!(v["tool_choice"], "required");
        assert!(v.get("parallel_tool_calls").is_none());
    }
}
