//! The simulators' deterministic function calling, the same for every API: which tools a
//! conversation calls, with which arguments, and the reply once their results are back. Each API
//! module only reads its wire format into a [`Conversation`] (tools included) and writes the
//! [`Turn`](crate::replies::Turn)'s calls back in its own shape.
//!
//! # Rules
//! - A tool is called when the caller's last message names it: its name with `_` and `-` read
//!   as spaces (`order_status` ← "what is the order status of 4217?", `end_call` ← "please end
//!   the call" does not match, "end call" does). `tool_choice` `none` calls nothing; a forced
//!   function is called whatever was said; `required` calls the first tool if none is named.
//!   Without parallel calls only the first match is called.
//! - Arguments come from the parameters schema, property by property: numbers take the first
//!   number said; booleans `true`; strings with an `enum` the first value said (else the
//!   first value); strings named like an identifier (`…id`, `…number`, `digits`, `phone`, `to`)
//!   take every digit said, in order ("4 2 1 7" → `"4217"`); other strings take what was said
//!   after the tool's name (or everything).
//! - Call ids are `call_<n>`, counted over the conversation, so they are unique within it.
//! - Once the last message is a tool result, the reply voices the results: "I checked: …".
//! - A tool result that answers no call, or a call left without a result, is the request's
//!   fault ([`ToolError`]), which each API refuses with a 400 in its own error shape.

use llm::{Message, Role, ToolCall, ToolChoice, ToolSpec};
use serde_json::{Map, Value};

/// The tools a request offered, as the simulator read them from the API's wire format.
#[derive(Debug, Clone, Default)]
pub(crate) struct Offered {
    pub specs: Vec<ToolSpec>,
    pub choice: Option<ToolChoice>,
    /// `false` only when the request turned parallel calls off.
    pub parallel: bool,
}

/// What the model does next.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    Call(Vec<ToolCall>),
    /// Voice the results of the calls just answered.
    Results(String),
    /// No tool involved: the keyword table answers.
    Talk,
}

/// A conversation the real APIs would refuse.
#[derive(Debug, PartialEq)]
pub(crate) struct ToolError(pub String);

pub(crate) fn decide(messages: &[Message], offered: &Offered) -> Result<Decision, ToolError> {
    check_pairs(messages)?;
    match messages.last() {
        Some(m) if m.role == Role::Tool => Ok(Decision::Results(voice_results(messages))),
        _ => {
            let said = last_user_text(messages);
            let calls = calls_for(said, offered, first_call_number(messages));
            Ok(if calls.is_empty() { Decision::Talk } else { Decision::Call(calls) })
        }
    }
}

fn last_user_text(messages: &[Message]) -> &str {
    messages.iter().rev().find(|m| m.role == Role::User).map_or("", |m| m.content.as_str())
}

fn first_call_number(messages: &[Message]) -> usize {
    messages.iter().map(|m| m.tool_calls.len()).sum::<usize>() + 1
}

/// Every result answers an earlier call, and every call is answered before the next user or
/// assistant turn (what OpenAI and Anthropic enforce).
fn check_pairs(messages: &[Message]) -> Result<(), ToolError> {
    let mut open: Vec<&str> = Vec::new();
    for m in messages {
        match m.role {
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or("");
                let Some(at) = open.iter().position(|c| *c == id) else {
                    return Err(ToolError(format!("tool result for unknown call id '{id}'")));
                };
                open.remove(at);
            }
            _ if !open.is_empty() => {
                return Err(ToolError(format!("tool call '{}' has no result", open[0])));
            }
            Role::Assistant => open.extend(m.tool_calls.iter().map(|c| c.id.as_str())),
            _ => {}
        }
    }
    Ok(())
}

fn calls_for(said: &str, offered: &Offered, first: usize) -> Vec<ToolCall> {
    let lower = normalize(said);
    let named = |t: &&ToolSpec| !t.name.is_empty() && lower.contains(&phrase(&t.name));
    let mut picked: Vec<&ToolSpec> = match &offered.choice {
        Some(ToolChoice::None) => return Vec::new(),
        Some(ToolChoice::Function(f)) => offered.specs.iter().filter(|t| &t.name == f).collect(),
        Some(ToolChoice::Required) => {
            let named: Vec<_> = offered.specs.iter().filter(named).collect();
            if named.is_empty() {
                offered.specs.iter().take(1).collect()
            } else {
                named
            }
        }
        Some(ToolChoice::Auto) | None => offered.specs.iter().filter(named).collect(),
    };
    if !offered.parallel {
        picked.truncate(1);
    }
    picked
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            ToolCall::new(
                format!("call_{}", first + i),
                t.name.clone(),
                arguments(&t.parameters, said, &phrase(&t.name)).to_string(),
            )
        })
        .collect()
}

/// Lowercase words separated by single spaces, punctuation dropped.
fn normalize(text: &str) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { ' ' }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn phrase(name: &str) -> String {
    normalize(&name.replace(['_', '-'], " "))
}

fn arguments(schema: &Value, said: &str, tool_phrase: &str) -> Value {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Value::Object(Map::new());
    };
    let lower = normalize(said);
    let after = lower.split_once(tool_phrase).map_or(lower.as_str(), |(_, rest)| rest).trim();
    let args = props.iter().map(|(name, p)| (name.clone(), argument(name, p, &lower, after)));
    Value::Object(args.collect())
}

fn argument(name: &str, schema: &Value, said: &str, after: &str) -> Value {
    let first_number = || said.split(' ').find_map(|w| w.parse::<i64>().ok());
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") | Some("number") => first_number().map_or(Value::Null, Value::from),
        Some("boolean") => Value::Bool(true),
        _ => {
            if let Some(options) = schema.get("enum").and_then(Value::as_array) {
                let said_one = options.iter().find(|o| o.as_str().is_some_and(|s| said.contains(&normalize(s))));
                return said_one.or(options.first()).cloned().unwrap_or(Value::Null);
            }
            let id_like = ["id", "number", "digits", "phone"].iter().any(|k| name.ends_with(k)) || name == "to";
            if id_like {
                Value::String(said.chars().filter(char::is_ascii_digit).collect())
            } else {
                Value::String(after.to_string())
            }
        }
    }
}

/// The pieces a call's arguments stream in (APIs that stream them: a fragment per event), at
/// most [`PIECE_CHARS`] characters each; they concatenate to `arguments`.
pub(crate) fn argument_pieces(arguments: &str) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(arguments.len() / PIECE_CHARS + 1);
    let mut rest = arguments;
    while !rest.is_empty() {
        let end = rest.char_indices().nth(PIECE_CHARS).map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// The longest streamed argument fragment.
const PIECE_CHARS: usize = 12;

/// "I checked: <result>." with each result of the latest calls made readable: a JSON string
/// unquoted, an object as `key value` pairs (keys in order), anything else as sent.
fn voice_results(messages: &[Message]) -> String {
    let results: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| m.role == Role::Tool)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|m| readable(&m.content))
        .collect();
    format!("I checked: {}.", results.join(", and "))
}

fn readable(content: &str) -> String {
    match serde_json::from_str::<Value>(content) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                format!("{} {}", k.replace('_', " "), v.as_str().map_or_else(|| v.to_string(), str::to_string))
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => content.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order_status() -> ToolSpec {
        ToolSpec {
            name: "order_status".into(),
            description: "Look up an order".into(),
            parameters: json!({"type":"object","properties":{"order_id":{"type":"string"},"detail":{"type":"string"},"rush":{"type":"boolean"}},"required":["order_id"]}),
        }
    }

    fn end_call() -> ToolSpec {
        ToolSpec { name: "end_call".into(), description: String::new(), parameters: llm::empty_object_schema() }
    }

    fn offered(specs: Vec<ToolSpec>) -> Offered {
        Offered { specs, choice: None, parallel: true }
    }

    #[test]
    fn a_named_tool_is_called_with_arguments_from_the_words() {
        let msgs = [Message::system("be nice"), Message::user("What is the Order Status of order 4 2 1 7, please?")];
        let Ok(Decision::Call(calls)) = decide(&msgs, &offered(vec![order_status(), end_call()])) else {
            panic!("expected a call");
        };
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id, "call_1");
        assert_eq!(calls[0].name, "order_status");
        let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(args, json!({"order_id":"4217","detail":"of order 4 2 1 7 please","rush":true}));
    }

    #[test]
    fn unnamed_tools_are_not_called_unless_forced() {
        let msgs = [Message::user("tell me a story")];
        assert_eq!(decide(&msgs, &offered(vec![order_status()])), Ok(Decision::Talk));
        let forced = Offered {
            choice: Some(ToolChoice::Function("end_call".into())),
            ..offered(vec![order_status(), end_call()])
        };
        let Ok(Decision::Call(calls)) = decide(&msgs, &forced) else { panic!("forced call") };
        assert_eq!(calls[0].name, "end_call");
        assert_eq!(calls[0].arguments, "{}");
        let required = Offered { choice: Some(ToolChoice::Required), ..offered(vec![order_status(), end_call()]) };
        let Ok(Decision::Call(calls)) = decide(&msgs, &required) else { panic!("required call") };
        assert_eq!(calls[0].name, "order_status");
        let none = Offered { choice: Some(ToolChoice::None), ..offered(vec![end_call()]) };
        assert_eq!(decide(&[Message::user("end call")], &none), Ok(Decision::Talk));
    }

    #[test]
    fn parallel_calls_unless_turned_off() {
        let msgs = [Message::user("order status 12 then end call")];
        let Ok(Decision::Call(calls)) = decide(&msgs, &offered(vec![order_status(), end_call()])) else { panic!() };
        assert_eq!(calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["call_1", "call_2"]);
        let serial = Offered { parallel: false, ..offered(vec![order_status(), end_call()]) };
        let Ok(Decision::Call(calls)) = decide(&msgs, &serial) else { panic!() };
        assert_eq!(calls.len(), 1);
    }

    #[test]
    fn argument_pieces_concatenate() {
        let args = r#"{"order_id":"4217","note":"café ✓"}"#;
        let pieces = argument_pieces(args);
        assert_eq!(pieces.concat(), args);
        assert!(pieces.len() > 2 && pieces.iter().all(|p| p.chars().count() <= PIECE_CHARS));
        assert!(argument_pieces("").is_empty());
    }

    #[test]
    fn results_are_voiced_and_must_answer_a_call() {
        let call = ToolCall::new("call_1", "order_status", "{}");
        let mut msgs = vec![
            Message::user("order status 4217"),
            Message::assistant_calls("", vec![call]),
            Message::tool_result("call_1", r#"{"status":"shipped","eta":"Tuesday"}"#),
        ];
        assert_eq!(
            decide(&msgs, &offered(vec![order_status()])),
            Ok(Decision::Results("I checked: eta Tuesday, status shipped.".into()))
        );
        msgs[2] = Message::tool_result("call_9", "x");
        assert_eq!(decide(&msgs, &offered(vec![])), Err(ToolError("tool result for unknown call id 'call_9'".into())));
        msgs[2] = Message::user("hello?");
        assert_eq!(decide(&msgs, &offered(vec![])), Err(ToolError("tool call 'call_1' has no result".into())));
        msgs.truncate(2);
        msgs.push(Message::tool_result("call_1", "\"delivered\""));
        msgs.push(Message::assistant("I checked: delivered."));
        msgs.push(Message::user("and order status 99?"));
        let Ok(Decision::Call(calls)) = decide(&msgs, &offered(vec![order_status()])) else { panic!() };
        assert_eq!(calls[0].id, "call_2");
    }
}
