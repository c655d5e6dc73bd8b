//! Responses API JSON shapes (protocols/llm-more.md E1). Only what a voice turn needs is read;
//! the ~55 other event types and unknown fields (`obfuscation`, `logprobs`) are ignored.

use crate::{Message, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub(super) struct ResponsesRequest<'a> {
    pub model: &'a str,
    pub input: Vec<InputMessage<'a>>,
    pub stream: bool,
    /// The session keeps the history; nothing is chained by `previous_response_id`.
    pub store: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
}

impl<'a> ResponsesRequest<'a> {
    pub(super) fn new(model: &'a str, messages: &'a [Message], max_output_tokens: Option<u32>) -> Self {
        let input =
            messages.iter().map(|m| InputMessage { kind: "message", role: m.role, content: &m.content }).collect();
        Self { model, input, stream: true, store: false, max_output_tokens }
    }
}

/// An input message item; `system` stays in place rather than moving to `instructions`, so a
/// mid-conversation system note keeps its position.
#[derive(Debug, Serialize)]
pub(super) struct InputMessage<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: Role,
    pub content: &'a str,
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
pub(super) struct Response {
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub error: Option<ErrorBody>,
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct IncompleteDetails {
    #[serde(default)]
    pub reason: Option<String>,
}
