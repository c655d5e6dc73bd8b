//! Function calling in OpenAI's two wire shapes, for the Chat Completions and Responses
//! simulators (Azure reuses both): the offered tools read into [`Offered`], a conversation whose
//! calls and results do not pair up refused the way OpenAI words it, and the argument fragments
//! a streamed call is written in.
//!
//! The OpenAI API simulator also stands in for the compatible family, so `tool_choice: "any"`
//! (Mistral's and Fireworks' word for a required call) is read as `required`.

use super::ApiError;
use crate::tools::{Offered, ToolError};
use llm::{Message, Role, ToolChoice, ToolSpec};
use serde_json::{Map, Value};

/// Where a tool's fields sit: under `function` (Chat Completions) or flat (Responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Chat,
    Responses,
}

/// `tools`, `tool_choice` and `parallel_tool_calls` of a request body. Tools of other types
/// (Responses' `web_search`, …) are not functions and are left out; a choice or a parallel switch
/// without tools is refused, as OpenAI refuses it.
pub(crate) fn offered(req: &Map<String, Value>, shape: Shape) -> Result<Offered, ApiError> {
    let specs = match req.get("tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tools)) => {
            let specs = tools.iter().enumerate().map(|(i, t)| spec(i, t, shape));
            specs.filter_map(Result::transpose).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(ApiError::invalid("Invalid type for 'tools': expected an array.", param("tools"), None)),
    };
    let choice = match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(v) => Some(choice(v, shape)?),
    };
    let parallel = match req.get("parallel_tool_calls") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            let message = "Invalid type for 'parallel_tool_calls': expected a boolean.";
            return Err(ApiError::invalid(message, param("parallel_tool_calls"), Some("invalid_type")));
        }
    };
    if specs.is_empty() {
        let lone = [("tool_choice", choice.is_some()), ("parallel_tool_calls", parallel.is_some())];
        if let Some((name, _)) = lone.into_iter().find(|(_, set)| *set) {
            let message = format!("Invalid value for '{name}': '{name}' is only allowed when 'tools' are specified.");
            return Err(ApiError::invalid(message, param(name), None));
        }
    }
    if let Some(ToolChoice::Function(name)) = &choice {
        if !specs.iter().any(|s: &ToolSpec| &s.name == name) {
            let message = format!("Invalid value for 'tool_choice': function '{name}' is not among the 'tools'.");
            return Err(ApiError::invalid(message, param("tool_choice"), Some("invalid_value")));
        }
    }
    Ok(Offered { specs, choice, parallel: parallel.unwrap_or(true) })
}

fn param(name: &str) -> Option<String> {
    Some(name.to_string())
}

/// One function tool, or `None` for a tool of another type.
fn spec(i: usize, tool: &Value, shape: Shape) -> Result<Option<ToolSpec>, ApiError> {
    if tool.get("type").and_then(Value::as_str) != Some("function") {
        return Ok(None);
    }
    let (fields, at) = match shape {
        Shape::Chat => (tool.get("function"), format!("tools[{i}].function")),
        Shape::Responses => (Some(tool), format!("tools[{i}]")),
    };
    let missing = |what: &str| {
        let name = format!("{at}{what}");
        ApiError::invalid(
            format!("Missing required parameter: '{name}'."),
            Some(name),
            Some("missing_required_parameter"),
        )
    };
    let fields = fields.filter(|f| f.is_object()).ok_or_else(|| missing(""))?;
    let name = fields.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| missing(".name"))?;
    Ok(Some(ToolSpec {
        name: name.to_string(),
        description: fields.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
        parameters: fields
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(llm::empty_object_schema),
    }))
}

fn choice(v: &Value, shape: Shape) -> Result<ToolChoice, ApiError> {
    let named = match shape {
        Shape::Chat => v.get("function").and_then(|f| f.get("name")),
        Shape::Responses => v.get("name"),
    };
    match (v, named.and_then(Value::as_str)) {
        (Value::String(word), _) => match word.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" | "any" => Ok(ToolChoice::Required),
            other => Err(ApiError::invalid(
                format!("Invalid value: '{other}'. Supported values are: 'none', 'auto', and 'required'."),
                param("tool_choice"),
                Some("invalid_value"),
            )),
        },
        (Value::Object(o), Some(name)) if o.get("type").and_then(Value::as_str) == Some("function") => {
            Ok(ToolChoice::Function(name.to_string()))
        }
        _ => Err(ApiError::invalid("Invalid value for 'tool_choice'.", param("tool_choice"), Some("invalid_value"))),
    }
}

/// The 400 for a conversation whose calls and results do not pair up, in OpenAI's words: a
/// result answering no call, or a call left without a result.
pub(crate) fn refused(e: ToolError, messages: &[Message], shape: Shape) -> ApiError {
    let orphan = messages.iter().find(|m| m.role == Role::Tool && m.answered_call(messages).is_none());
    let answered = |id: &str| messages.iter().any(|m| m.tool_call_id.as_deref() == Some(id));
    let unanswered = messages.iter().flat_map(|m| &m.tool_calls).find(|c| !answered(&c.id));
    let message = match (shape, orphan, unanswered) {
        (Shape::Chat, Some(_), _) => "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.".to_string(),
        (Shape::Responses, Some(m), _) => format!(
            "No tool call found for function call output with call_id {}.",
            m.tool_call_id.as_deref().unwrap_or_default()
        ),
        (Shape::Chat, None, Some(c)) => format!("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}", c.id),
        (Shape::Responses, None, Some(c)) => format!("No tool output found for function call {}.", c.id),
        (_, None, None) => e.0,
    };
    let at = match shape {
        Shape::Chat => "messages",
        Shape::Responses => "input",
    };
    ApiError::invalid(message, param(at), None)
}

/// A call's argument deltas: the JSON text in pieces of at most 8 characters.
pub(crate) fn argument_pieces(arguments: &str) -> Vec<String> {
    let chars: Vec<char> = arguments.chars().collect();
    chars.chunks(8).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm::ToolCall;
    use serde_json::json;

    fn read(body: Value, shape: Shape) -> Result<Offered, ApiError> {
        offered(body.as_object().unwrap(), shape)
    }

    #[test]
    fn both_shapes_read_the_same_tools() {
        let params = json!({"type": "object", "properties": {"id": {"type": "string"}}});
        let chat = json!({
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "Find", "parameters": params}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "parallel_tool_calls": false
        });
        let flat = json!({
            "tools": [{"type": "web_search"}, {"type": "function", "name": "lookup", "description": "Find", "parameters": params, "strict": false}],
            "tool_choice": {"type": "function", "name": "lookup"},
            "parallel_tool_calls": false
        });
        for (body, shape) in [(chat, Shape::Chat), (flat, Shape::Responses)] {
            let o = read(body, shape).unwrap_or_else(|_| panic!("{shape:?}"));
            assert_eq!(
                o.specs,
                vec![ToolSpec { name: "lookup".into(), description: "Find".into(), parameters: params.clone() }]
            );
            assert_eq!(o.choice, Some(ToolChoice::Function("lookup".into())));
            assert!(!o.parallel);
        }
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let any = read(json!({"tools": tools, "tool_choice": "any"}), Shape::Chat).unwrap();
        assert_eq!(any.choice, Some(ToolChoice::Required));
        assert!(any.parallel, "parallel calls unless turned off");
        assert_eq!(any.specs[0].parameters, llm::empty_object_schema());
    }

    #[test]
    fn malformed_tool_fields_are_400s() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        for (body, at) in [
            (json!({"tool_choice": "auto"}), "tool_choice"),
            (json!({"parallel_tool_calls": true}), "parallel_tool_calls"),
            (json!({"tools": [{"type": "function", "function": {}}]}), "tools[0].function.name"),
            (json!({"tools": [{"type": "function"}]}), "tools[0].function"),
            (json!({"tools": tools, "tool_choice": "sometimes"}), "tool_choice"),
            (json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "g"}}}), "tool_choice"),
            (json!({"tools": tools, "parallel_tool_calls": "yes"}), "parallel_tool_calls"),
        ] {
            let Err(e) = read(body.clone(), Shape::Chat) else { panic!("{body} was accepted") };
            assert_eq!(e.param.as_deref(), Some(at), "{body}");
        }
    }

    #[test]
    fn pairing_refusals_in_openais_words() {
        let call = ToolCall::new("call_1", "f", "{}");
        let orphan = [Message::user("hi"), Message::tool_result("call_9", "x")];
        let e = refused(ToolError("tool result for unknown call id 'call_9'".into()), &orphan, Shape::Responses);
        assert_eq!(e.message, "No tool call found for function call output with call_id call_9.");
        let e = refused(ToolError(String::new()), &orphan, Shape::Chat);
        assert!(e.message.starts_with("Invalid parameter: messages with role 'tool'"), "{}", e.message);
        let open = [Message::user("hi"), Message::assistant_calls("", vec![call]), Message::user("well?")];
        let e = refused(ToolError(String::new()), &open, Shape::Responses);
        assert_eq!(e.message, "No tool output found for function call call_1.");
        let e = refused(ToolError(String::new()), &open, Shape::Chat);
        assert!(e.message.ends_with("did not have response messages: call_1"), "{}", e.message);
    }

    #[test]
    fn arguments_in_eight_character_pieces() {
        assert_eq!(argument_pieces(r#"{"city":"Paris"}"#), [r#"{"city":"#, r#""Paris"}"#]);
        assert!(argument_pieces("").is_empty());
    }
}
