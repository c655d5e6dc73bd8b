//! `POST /v1/responses` (protocols/llm-more.md E1), shared with the Azure sim: the input parsed
//! into the common conversation (messages, `function_call` and `function_call_output` items) with
//! the offered tools, answered by the stream in `stream`.

mod stream;

use super::function_calling::{self, Shape};
use super::ApiError;
use crate::paced;
use crate::replies::{count, text_of, Conversation};
use crate::routes::Answer;
use crate::server::{ok_json, Shared};
use llm::{Message, Role, ToolCall};
use serde_json::{json, Value};
use stream::{Echo, Plan};

/// What the sim needs from a Responses request.
pub(crate) struct Request {
    pub model: String,
    pub conversation: Conversation,
    pub stream: bool,
    pub max_output_tokens: Option<usize>,
    echo: Echo,
}

/// Reads `model`, `instructions`, the tool fields and `input` (a string, or message,
/// `function_call` and `function_call_output` items; content a string or text parts).
pub(crate) fn parse(body: &[u8]) -> Result<Request, ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid("We could not parse the JSON body of your request.", None, None));
    };
    let Some(model) = req.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid(
            "Missing required parameter: 'model'.",
            Some("model".into()),
            Some("missing_required_parameter"),
        ));
    };
    let offered = function_calling::offered(&req, Shape::Responses)?;
    let mut messages = Vec::new();
    if let Some(text) = req.get("instructions").and_then(Value::as_str) {
        messages.push(Message::system(text));
    }
    match req.get("input") {
        Some(Value::String(text)) => messages.push(Message::user(text.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                read_item(i, item, &mut messages)?;
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "Missing required parameter: 'input'.",
                Some("input".into()),
                Some("missing_required_parameter"),
            ))
        }
    }
    // The refusal names the unpaired call, so it needs the messages the conversation takes.
    let conversation = Conversation::with_tools(messages.clone(), 0, &offered)
        .map_err(|e| function_calling::refused(e, &messages, Shape::Responses))?;
    let echo = Echo {
        tools: req.get("tools").cloned().unwrap_or_else(|| json!([])),
        tool_choice: req.get("tool_choice").cloned().unwrap_or_else(|| json!("auto")),
        parallel_tool_calls: offered.parallel,
    };
    Ok(Request {
        model: model.to_string(),
        conversation,
        stream: req.get("stream").and_then(Value::as_bool).unwrap_or(false),
        max_output_tokens: count(req.get("max_output_tokens")),
        echo,
    })
}

/// Appends input item `i`: a message; a `function_call`, joined to the assistant turn before it
/// (or starting one); a `function_call_output` as a tool result. Other item types (reasoning, …)
/// carry nothing the sim answers from.
fn read_item(i: usize, item: &Value, messages: &mut Vec<Message>) -> Result<(), ApiError> {
    let field = |name: &str| {
        item.get(name).and_then(Value::as_str).ok_or_else(|| {
            let at = format!("input[{i}].{name}");
            ApiError::invalid(
                format!("Missing required parameter: '{at}'."),
                Some(at),
                Some("missing_required_parameter"),
            )
        })
    };
    match item.get("type").and_then(Value::as_str).unwrap_or("message") {
        "message" => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("system" | "developer") => Role::System,
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                other => {
                    return Err(ApiError::invalid(
                        format!("Invalid value: {other:?}. Supported values are: 'user', 'assistant', 'system', and 'developer'."),
                        Some(format!("input[{i}].role")),
                        Some("invalid_value"),
                    ))
                }
            };
            messages.push(Message::new(role, text_of(item.get("content"))));
        }
        "function_call" => {
            let call = ToolCall::new(
                field("call_id")?.to_string(),
                field("name")?.to_string(),
                field("arguments")?.to_string(),
            );
            match messages.last_mut() {
                Some(m) if m.role == Role::Assistant => m.tool_calls.push(call),
                _ => messages.push(Message::assistant_calls("", vec![call])),
            }
        }
        "function_call_output" => {
            let output = text_of(item.get("output"));
            messages.push(Message::tool_result(field("call_id")?, output));
        }
        _ => {}
    }
    Ok(())
}

/// The answer to an accepted request (the OpenAI or Azure API): the paced stream, or the whole
/// Response object.
pub(crate) fn answer(shared: &Shared, req: Request, drop_after: Option<usize>) -> Answer {
    let turn = shared.turn(&req.conversation, req.max_output_tokens);
    let plan = Plan::new(&req.model, turn, req.echo, drop_after);
    if !req.stream {
        return ok_json(&plan.object(plan.final_status()));
    }
    Ok(paced::sse_stream(plan.schedule(shared.pacer())))
}
