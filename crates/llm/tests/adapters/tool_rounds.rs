//! What every adapter's tool cases share: the tools, a stream that offers them, and the calls
//! of a stream.

use llm::{LlmError, LlmEvent, Message, ToolCall, ToolSpec, Tools};
use llm_sim::replies::call_tokens;
use llm_sim::testing::{collect, sim_prompt_tokens, Adapter};
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

/// The tools offered as they are, no choice or parallel setting.
pub fn offer(specs: &[ToolSpec]) -> Tools<'_> {
    Tools { specs, choice: None, parallel: None }
}

/// A call the simulators make, with the id they give the first call of an answer.
pub fn call_1(name: &str, arguments: &str) -> ToolCall {
    ToolCall::new("call_1", name, arguments)
}

/// The call every simulator makes for [`ASKS_ORDER`].
pub fn order_call() -> ToolCall {
    call_1("order_status", r#"{"order_id":"4217"}"#)
}

/// The whole stream of an answer to `messages` that is just `call`, ending with `finish`:
/// the call, exact usage (the call's tokens out), done.
pub fn call_answer(messages: &[Message], call: &ToolCall, finish: &str) -> Vec<LlmEvent> {
    vec![
        LlmEvent::ToolCall(call.clone()),
        LlmEvent::Usage {
            input_tokens: sim_prompt_tokens(messages),
            output_tokens: call_tokens(call),
            estimated: false,
        },
        LlmEvent::Done { finish_reason: Some(finish.into()) },
    ]
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
    Ok(collect(Adapter { provider, base, key, model }.stream(messages, None, tools).await?).await)
}

pub use llm_sim::testing::tool_calls as calls;

/// The conversation after `calls` were made and answered with `results`, in order.
pub fn answered(messages: &[Message], calls: &[ToolCall], results: &[&str]) -> Vec<Message> {
    let mut next = messages.to_vec();
    next.push(Message::assistant_calls("", calls.to_vec()));
    next.extend(calls.iter().zip(results).map(|(c, r)| Message::tool_result(c.id.clone(), *r)));
    next
}
