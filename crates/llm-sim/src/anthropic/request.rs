//! Reading a Messages request: the conversation (text, `tool_use` and `tool_result` blocks),
//! the tools and `tool_choice`, refused the way api.anthropic.com refuses them.

use super::{invalid, ApiError};
use crate::replies::{text_of, Conversation};
use crate::tools::Offered;
use llm::{Message, Role, ToolCall, ToolChoice, ToolSpec};
use serde_json::{Map, Value};

/// What the sim needs from a Messages request.
pub(super) struct Request {
    pub model: String,
    /// The system prompt first (if any), then the turns.
    pub conversation: Conversation,
    pub stream: bool,
    pub max_tokens: usize,
}

pub(super) fn parse(body: &[u8]) -> Result<Request, ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("There was an issue with your request body: invalid JSON"));
    };
    let Some(model) = req.get("model").and_then(Value::as_str) else {
        return Err(invalid("model: Field required"));
    };
    let Some(max_tokens) = req.get("max_tokens").and_then(Value::as_u64) else {
        return Err(invalid("max_tokens: Field required"));
    };
    let Some(raw) = req.get("messages").and_then(Value::as_array) else {
        return Err(invalid("messages: Field required"));
    };
    let offered = offered(&req)?;
    let mut messages = Vec::with_capacity(raw.len() + 1);
    let system = text_of(req.get("system"));
    if !system.is_empty() {
        messages.push(Message::new(Role::System, system));
    }
    let mut tool_blocks = false;
    for (i, m) in raw.iter().enumerate() {
        tool_blocks |= read_turn(i, m, &mut messages)?;
    }
    let Some(offered) = offered else {
        if tool_blocks {
            return Err(invalid("Requests which include `tool_use` or `tool_result` blocks must define tools."));
        }
        return request(model, Conversation::new(messages, 0), &req, max_tokens);
    };
    let conversation = Conversation::with_tools(messages, 0, &offered).map_err(|e| invalid(e.0))?;
    request(model, conversation, &req, max_tokens)
}

fn request(
    model: &str,
    conversation: Conversation,
    req: &Map<String, Value>,
    max_tokens: u64,
) -> Result<Request, ApiError> {
    Ok(Request {
        model: model.to_string(),
        conversation,
        stream: req.get("stream").and_then(Value::as_bool).unwrap_or(false),
        max_tokens: usize::try_from(max_tokens).unwrap_or(usize::MAX),
    })
}

/// Appends turn `i` as messages: a user turn's `tool_result` blocks as tool results (before its
/// text), an assistant turn's `tool_use` blocks as its calls. Says whether it held tool blocks.
fn read_turn(i: usize, m: &Value, messages: &mut Vec<Message>) -> Result<bool, ApiError> {
    let role = match m.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some(other) => {
            return Err(invalid(format!("messages.{i}.role: Input should be 'user' or 'assistant' (got '{other}')")))
        }
        None => return Err(invalid(format!("messages.{i}.role: Field required"))),
    };
    let content = m.get("content");
    let text = text_of(content);
    let blocks = content.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match (block.get("type").and_then(Value::as_str), role) {
            (Some("tool_use"), Role::Assistant) => calls.push(tool_use(block).ok_or_else(|| {
                invalid(format!("messages.{i}.content.{j}.tool_use: id, name and input are required"))
            })?),
            (Some("tool_result"), Role::User) => {
                let Some(id) = block.get("tool_use_id").and_then(Value::as_str) else {
                    return Err(invalid(format!("messages.{i}.content.{j}.tool_result.tool_use_id: Field required")));
                };
                results.push(Message::tool_result(id, text_of(block.get("content"))));
            }
            (Some(kind @ ("tool_use" | "tool_result")), _) => {
                return Err(invalid(format!("messages.{i}.content.{j}: `{kind}` blocks are not allowed in this role")))
            }
            _ => {}
        }
    }
    let tool_blocks = !calls.is_empty() || !results.is_empty();
    if text.is_empty() && !tool_blocks {
        return Err(invalid(format!("messages.{i}: text content blocks must be non-empty")));
    }
    messages.extend(results);
    match role {
        Role::Assistant => messages.push(Message::assistant_calls(text, calls)),
        _ if !text.is_empty() || !tool_blocks => messages.push(Message::new(role, text)),
        _ => {}
    }
    Ok(tool_blocks)
}

fn tool_use(block: &Value) -> Option<ToolCall> {
    let field = |k: &str| block.get(k).and_then(Value::as_str).map(str::to_string);
    let input = block.get("input").filter(|v| v.is_object())?;
    Some(ToolCall::new(field("id")?, field("name")?, input.to_string()))
}

/// `tools` (`{name, description?, input_schema}`) and `tool_choice` (`{type: auto|any|tool|none,
/// name?, disable_parallel_tool_use?}`); `None` when no tools are defined.
fn offered(req: &Map<String, Value>) -> Result<Option<Offered>, ApiError> {
    let tools = req.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty());
    let choice = req.get("tool_choice");
    let Some(tools) = tools else {
        return match choice {
            Some(_) => Err(invalid("tool_choice may only be specified while providing tools.")),
            None => Ok(None),
        };
    };
    let mut specs = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            return Err(invalid(format!("tools.{i}.custom.name: Field required")));
        };
        let Some(schema) = t.get("input_schema").filter(|s| s.is_object()) else {
            return Err(invalid(format!("tools.{i}.custom.input_schema: Field required")));
        };
        let description = t.get("description").and_then(Value::as_str).unwrap_or_default();
        specs.push(ToolSpec { name: name.into(), description: description.into(), parameters: schema.clone() });
    }
    let kind = choice.and_then(|c| c.get("type")).and_then(Value::as_str);
    let choice = match (kind, choice.and_then(|c| c.get("name")).and_then(Value::as_str)) {
        (None, _) => None,
        (Some("auto"), _) => Some(ToolChoice::Auto),
        (Some("any"), _) => Some(ToolChoice::Required),
        (Some("none"), _) => Some(ToolChoice::None),
        (Some("tool"), Some(name)) => Some(ToolChoice::Function(name.into())),
        (Some("tool"), None) => return Err(invalid("tool_choice.tool.name: Field required")),
        (Some(other), _) => {
            return Err(invalid(format!(
                "tool_choice: Input tag '{other}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
            )))
        }
    };
    let disabled = choice_flag(req.get("tool_choice"), "disable_parallel_tool_use");
    Ok(Some(Offered { specs, choice, parallel: !disabled }))
}

fn choice_flag(choice: Option<&Value>, flag: &str) -> bool {
    choice.and_then(|c| c.get(flag)).and_then(Value::as_bool).unwrap_or(false)
}
