//! What every adapter's tool cases share: the tools, a stream that offers them, and the calls
//! of a stream.

use llm::{LlmError, LlmEvent, Message, ToolCall, ToolSpec, Tools};
use llm_sim::testing::{collect, stream_with_tools};
use serde_json::json;
use url::Url;

/// The caller's words that name one tool (`order_status`), and two (`end_call` as well).
pub const ASKS_ORDER: &str = "what is the order status of 4217";
pub const ASKS_TWO: &str = "what is the order status of 4217, then end call";

pub fn order_status() -> ToolSpec {
    ToolSpec {
        name: "order_status".into(),
        description: "Look up an order by its number".into(),
        parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
    }
}

pub fn end_call() -> ToolSpec {
    ToolSpec { name: "end_call".into(), description: "Hang up".into(), parameters: llm::empty_object_schema() }
}

/// Every event of a stream from `provider` offering `tools` (10 s bound per event).
pub async fn stream_tools(
    provider: &str,
    base: &Url,
    key: &str,
    model: &str,
    messages: &[Message],
    tools: Tools<'_>,
) -> Result<Vec<LlmEvent>, LlmError> {
    let http = reqwest::Client::new();
    Ok(collect(stream_with_tools(&http, provider, base, key, model, messages, None, tools).await?).await)
}

pub fn calls(events: &[LlmEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::ToolCall(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The conversation after `calls` were made and answered with `results`, in order.
pub fn answered(messages: &[Message], calls: &[ToolCall], results: &[&str]) -> Vec<Message> {
    let mut next = messages.to_vec();
    next.push(Message::assistant_calls("", calls.to_vec()));
    next.extend(calls.iter().zip(results).map(|(c, r)| Message::tool_result(c.id.clone(), *r)));
    next
}
