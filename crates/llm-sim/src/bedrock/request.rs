//! Reading a Converse request: `system`, alternating turns of content blocks (`text`, `toolUse`,
//! `toolResult`) and `toolConfig`, validated the way Converse validates them.

use super::{invalid, Refused};
use crate::replies::{count, Conversation};
use crate::tools::Offered;
use llm::{Message, Role, ToolCall, ToolChoice, ToolSpec};
use serde_json::{Map, Value};

/// What the sim needs from a Converse request.
pub(super) struct Converse {
    pub conversation: Conversation,
    pub max_tokens: Option<usize>,
}

const USER_FIRST: &str =
    "A conversation must start with a user message. Try again with a conversation that starts with a user message.";

pub(super) fn parse(body: &[u8]) -> Result<Converse, Refused> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(Refused {
            status: 400,
            code: "SerializationException",
            message: "Unable to parse the request body.".into(),
        });
    };
    let mut messages = Vec::new();
    for block in req.get("system").and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            messages.push(Message::new(Role::System, text));
        }
    }
    let Some(turns) = req.get("messages").and_then(Value::as_array).filter(|t| !t.is_empty()) else {
        return Err(invalid(USER_FIRST));
    };
    let mut previous = None;
    let mut tool_blocks = false;
    for turn in turns {
        let role = match turn.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            other => return Err(invalid(format!("1 validation error detected: Value {other:?} at 'messages.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]"))),
        };
        if previous.is_none() && role != Role::User {
            return Err(invalid(USER_FIRST));
        }
        if previous == Some(role) {
            return Err(invalid("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."));
        }
        previous = Some(role);
        let blocks = turn.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        tool_blocks |= read_turn(role, blocks, &mut messages)?;
    }
    let offered = match req.get("toolConfig") {
        Some(config) => offered(config)?,
        None if tool_blocks => {
            return Err(invalid(
                "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
            ))
        }
        None => Offered { parallel: true, ..Offered::default() },
    };
    let conversation = Conversation::with_tools(messages, 0, &offered).map_err(|e| invalid(e.0))?;
    let max_tokens = count(req.get("inferenceConfig").and_then(|c| c.get("maxTokens")));
    Ok(Converse { conversation, max_tokens })
}

/// Appends one turn: a user turn's `toolResult` blocks as tool results (before its text), an
/// assistant turn's `toolUse` blocks as its calls. Says whether it held tool blocks.
fn read_turn(role: Role, blocks: &[Value], messages: &mut Vec<Message>) -> Result<bool, Refused> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for block in blocks {
        if let Some(text) = block.get("text") {
            match text.as_str().filter(|t| !t.trim().is_empty()) {
                Some(t) => texts.push(t),
                None => return Err(invalid(
                    "The text field in the ContentBlock object is blank. Add text to the text field, and try again.",
                )),
            }
        } else if let (Some(tool_use), Role::Assistant) = (block.get("toolUse"), role) {
            calls.push(
                tool_call(tool_use).ok_or_else(|| invalid("The toolUse block needs toolUseId, name and input."))?,
            );
        } else if let (Some(result), Role::User) = (block.get("toolResult"), role) {
            let Some(id) = result.get("toolUseId").and_then(Value::as_str) else {
                return Err(invalid("1 validation error detected: Value null at 'messages.content.toolResult.toolUseId' failed to satisfy constraint: Member must not be null"));
            };
            results.push(Message::tool_result(id, result_text(result.get("content"))));
        } else if block.get("toolUse").or(block.get("toolResult")).is_some() {
            return Err(invalid("toolUse blocks belong to assistant turns and toolResult blocks to user turns."));
        }
    }
    let tool_blocks = !calls.is_empty() || !results.is_empty();
    if texts.is_empty() && !tool_blocks {
        return Err(invalid("The content field in the Message object is empty. Add a ContentBlock object to the content field and try again."));
    }
    let text = texts.join("\n");
    messages.extend(results);
    match role {
        Role::Assistant => messages.push(Message::assistant_calls(text, calls)),
        _ if !text.is_empty() => messages.push(Message::user(text)),
        _ => {}
    }
    Ok(tool_blocks)
}

fn tool_call(tool_use: &Value) -> Option<ToolCall> {
    let field = |k: &str| tool_use.get(k).and_then(Value::as_str).map(str::to_string);
    let input = tool_use.get("input")?;
    Some(ToolCall::new(field("toolUseId")?, field("name")?, input.to_string()))
}

/// The `text` blocks of a result as they are, `json` blocks as JSON text.
fn result_text(content: Option<&Value>) -> String {
    let blocks = content.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let texts: Vec<String> = blocks
        .iter()
        .filter_map(|b| match (b.get("text").and_then(Value::as_str), b.get("json")) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(json)) => Some(json.to_string()),
            _ => None,
        })
        .collect();
    texts.join("\n")
}

/// `toolConfig {tools: [{toolSpec: {name, description, inputSchema: {json}}}], toolChoice}`;
/// Converse calls in parallel and has no "none".
fn offered(config: &Value) -> Result<Offered, Refused> {
    let tools = config.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty());
    let Some(tools) = tools else {
        return Err(invalid("1 validation error detected: Value '[]' at 'toolConfig.tools' failed to satisfy constraint: Member must have length greater than or equal to 1"));
    };
    let mut specs = Vec::with_capacity(tools.len());
    for t in tools {
        let spec = t.get("toolSpec");
        let name = spec.and_then(|s| s.get("name")).and_then(Value::as_str).filter(|n| !n.is_empty());
        let schema = spec.and_then(|s| s.get("inputSchema")).and_then(|s| s.get("json"));
        let (Some(name), Some(schema)) = (name, schema) else {
            return Err(invalid("The toolSpec needs a name and an inputSchema.json."));
        };
        let description = spec.and_then(|s| s.get("description")).and_then(Value::as_str).unwrap_or_default();
        specs.push(ToolSpec { name: name.into(), description: description.into(), parameters: schema.clone() });
    }
    let choice = config.get("toolChoice").and_then(Value::as_object).map(choice).transpose()?;
    Ok(Offered { specs, choice, parallel: true })
}

fn choice(c: &Map<String, Value>) -> Result<ToolChoice, Refused> {
    if c.contains_key("auto") {
        return Ok(ToolChoice::Auto);
    }
    if c.contains_key("any") {
        return Ok(ToolChoice::Required);
    }
    match c.get("tool").and_then(|t| t.get("name")).and_then(Value::as_str) {
        Some(name) => Ok(ToolChoice::Function(name.into())),
        None => Err(invalid("toolChoice must be one of auto, any or tool (with a name).")),
    }
}
