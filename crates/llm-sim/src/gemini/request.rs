//! Reading a `generateContent` request: the contents (`text`, `functionCall` and
//! `functionResponse` parts), `tools[].functionDeclarations` and
//! `toolConfig.functionCallingConfig`, refused the way Google refuses them.

use super::{invalid, ApiError};
use crate::replies::{count, Conversation};
use crate::tools::Offered;
use llm::{Message, Role, ToolCall, ToolChoice, ToolSpec};
use serde_json::{Map, Value};

pub(super) struct Request {
    pub conversation: Conversation,
    pub max_tokens: Option<usize>,
}

/// Google's message for function responses that do not match the calls before them.
const UNMATCHED: &str = "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.";

pub(super) fn parse(body: &[u8], model: &str) -> Result<Request, ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("Invalid JSON payload received."));
    };
    let Some(contents) = req.get("contents").and_then(Value::as_array).filter(|c| !c.is_empty()) else {
        return Err(invalid("* GenerateContentRequest.contents: contents is not specified\n"));
    };
    let mut reader = Reader { messages: Vec::with_capacity(contents.len() + 1), open: Vec::new(), calls: 0 };
    if let Some(system) = req.get("systemInstruction").or(req.get("system_instruction")) {
        reader.messages.push(Message::new(Role::System, parts_text(system)));
    }
    let signed = model.starts_with("gemini-3");
    for content in contents {
        reader.content(content, signed)?;
    }
    let offered = offered(&req)?;
    let conversation = Conversation::with_tools(reader.messages, 0, &offered).map_err(|e| invalid(e.0))?;
    let max_tokens = count(req.get("generationConfig").and_then(|c| c.get("maxOutputTokens")));
    Ok(Request { conversation, max_tokens })
}

fn parts_text(content: &Value) -> String {
    let parts = content.get("parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
}

/// Contents read so far, with the calls of the last model content still unanswered.
struct Reader {
    messages: Vec<Message>,
    /// `(id, name)` of open calls, oldest first.
    open: Vec<(String, String)>,
    /// Calls read, for the ids of calls Gemini sent without one (`call_<n>`, the shared rule's).
    calls: usize,
}

impl Reader {
    fn content(&mut self, content: &Value, signed: bool) -> Result<(), ApiError> {
        let role = match content.get("role").and_then(Value::as_str) {
            Some("user") | None => Role::User,
            Some("model") => Role::Assistant,
            Some(_) => return Err(invalid("Please use a valid role: user, model.")),
        };
        let Some(parts) = content.get("parts").and_then(Value::as_array).filter(|p| !p.is_empty()) else {
            return Err(invalid("* GenerateContentRequest.contents.parts: contents.parts must not be empty.\n"));
        };
        let text = parts_text(content);
        if role == Role::Assistant {
            let calls = self.calls(parts, signed)?;
            self.messages.push(Message::assistant_calls(text, calls));
            return Ok(());
        }
        for response in parts.iter().filter_map(|p| p.get("functionResponse")) {
            let result = self.result(response)?;
            self.messages.push(result);
        }
        if !text.is_empty() || parts.iter().all(|p| p.get("functionResponse").is_none()) {
            self.messages.push(Message::user(text));
        }
        Ok(())
    }

    /// A model content's `functionCall` parts; on Gemini 3 models the first must carry a
    /// `thoughtSignature` (ai.google.dev/gemini-api/docs/thought-signatures).
    fn calls(&mut self, parts: &[Value], signed: bool) -> Result<Vec<ToolCall>, ApiError> {
        self.open.clear();
        let mut calls = Vec::new();
        for (position, part) in parts.iter().enumerate() {
            let Some(call) = part.get("functionCall") else { continue };
            let Some(name) = call.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
                return Err(invalid(
                    "* GenerateContentRequest.contents.parts.function_call.name: Name cannot be empty.\n",
                ));
            };
            if signed
                && calls.is_empty()
                && part.get("thoughtSignature").and_then(Value::as_str).is_none_or(str::is_empty)
            {
                return Err(invalid(format!("Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.", position + 1)));
            }
            self.calls += 1;
            let id =
                call.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{}", self.calls), str::to_string);
            let args = call.get("args").cloned().unwrap_or_else(|| Value::Object(Map::new()));
            self.open.push((id.clone(), name.to_string()));
            calls.push(ToolCall::new(id, name, args.to_string()));
        }
        Ok(calls)
    }

    /// A `functionResponse`, matched to an open call by `id`, else by name (oldest first).
    fn result(&mut self, response: &Value) -> Result<Message, ApiError> {
        let name = response.get("name").and_then(Value::as_str).unwrap_or_default();
        let id = response.get("id").and_then(Value::as_str);
        let at = match id {
            Some(id) => self.open.iter().position(|(open, _)| open == id),
            None => self.open.iter().position(|(_, open)| open == name),
        };
        let Some(at) = at else {
            return Err(invalid(UNMATCHED));
        };
        let (id, _) = self.open.remove(at);
        let Some(Value::Object(body)) = response.get("response") else {
            return Err(invalid(
                "* GenerateContentRequest.contents.parts.function_response.response: must be an object.\n",
            ));
        };
        Ok(Message::tool_result(id, result_text(body)))
    }
}

/// `{"output": x}` (or `{"result": x}`) as `x`, a string unquoted; any other object as JSON.
fn result_text(body: &Map<String, Value>) -> String {
    let single = (body.len() == 1).then(|| body.get("output").or(body.get("result"))).flatten();
    match single {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => Value::Object(body.clone()).to_string(),
    }
}

/// `tools[].functionDeclarations[]` (`parameters` or `parametersJsonSchema`) and
/// `toolConfig.functionCallingConfig {mode, allowedFunctionNames}`; Gemini calls in parallel.
fn offered(req: &Map<String, Value>) -> Result<Offered, ApiError> {
    let declarations = req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
        .flatten();
    let mut specs = Vec::new();
    for d in declarations {
        let Some(name) = d.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
            return Err(invalid(
                "* GenerateContentRequest.tools[0].function_declarations[0].name: Name cannot be empty.\n",
            ));
        };
        let parameters =
            d.get("parameters").or(d.get("parametersJsonSchema")).cloned().unwrap_or_else(llm::empty_object_schema);
        let description = d.get("description").and_then(Value::as_str).unwrap_or_default();
        specs.push(ToolSpec { name: name.into(), description: description.into(), parameters });
    }
    let config = req.get("toolConfig").and_then(|c| c.get("functionCallingConfig"));
    let allowed: Vec<&str> = config
        .and_then(|c| c.get("allowedFunctionNames"))
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let choice = match config.and_then(|c| c.get("mode")).and_then(Value::as_str) {
        None | Some("MODE_UNSPECIFIED") => None,
        Some("AUTO" | "VALIDATED") => Some(ToolChoice::Auto),
        Some("NONE") => Some(ToolChoice::None),
        Some("ANY") => match allowed.as_slice() {
            [one] => Some(ToolChoice::Function(one.to_string())),
            [] => Some(ToolChoice::Required),
            names => {
                specs.retain(|s| names.contains(&s.name.as_str()));
                Some(ToolChoice::Required)
            }
        },
        Some(_) => return Err(invalid("Invalid value at 'tool_config.function_calling_config.mode'")),
    };
    Ok(Offered { specs, choice, parallel: true })
}
