//! Streaming language models: one [`Llm`] trait, one module per provider. The simulators the
//! adapters are tested against live in the `llm-sim` crate.
//!
//! # Layout
//! - `openai`: the Chat Completions adapter, also serving the OpenAI-compatible family described
//!   in [`compat`] (base URLs, request quirks), and the Responses API for models named
//!   `responses:<model>` ([`RESPONSES_PREFIX`]); `anthropic`: Messages; `gemini`: Google AI
//!   Studio `streamGenerateContent`; `azure`: Azure OpenAI (classic and v1 endpoints, same
//!   decoders as OpenAI); `bedrock`: Bedrock ConverseStream (SigV4 from the `aws` crate, AWS
//!   event-stream framing).
//! - Shared plumbing: `sse` (incremental SSE parser), `pump` (body → events task), `http`
//!   (endpoints, sensitive key headers, refusals), `estimate` (the token-estimate rule).
//! - [`registry`]: adapters by name. [`validate_key`]: one cheap authenticated call per
//!   provider.
//!
//! # Invariants
//! - One shared `reqwest::Client` (connection pool) per adapter; the key comes with each request.
//! - Usage: provider-reported tokens when the stream carries them, else a conservative estimate
//!   marked `estimated`.
//! - A stream that ends on its own sends `Token`/`ToolCall` events, then exactly one `Usage`, then
//!   `Done` or `Error`, then closes. A receiver dropped early gets nothing more: the caller bills
//!   that turn itself ([`estimate_input_tokens`], [`estimate_output_tokens`]).

mod anthropic;
mod azure;
mod bedrock;
pub mod compat;
mod error;
mod estimate;
#[doc(hidden)]
pub mod fuzz;
mod gemini;
mod http;
mod openai;
mod pump;
pub mod registry;
mod sse;
mod tools;
mod validate;

pub use anthropic::Anthropic;
pub use azure::Azure;
pub use bedrock::Bedrock;
pub use compat::{default_base_url, CompatProvider};
pub use error::LlmError;
pub use estimate::{estimate_input_tokens, estimate_output_tokens};
pub use gemini::Gemini;
pub use openai::{base_model, OpenAi, RESPONSES_PREFIX};
pub use tools::{empty_object_schema, ToolCall, ToolChoice, ToolSpec, Tools};
pub use validate::validate_key;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result, answering an assistant's [`ToolCall`] ([`Message::tool_result`]).
    Tool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// An assistant turn's tool calls, in order (the text, if any, came before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A [`Role::Tool`] message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// One chat request.
pub struct LlmRequest<'a> {
    /// API base, e.g. `https://api.openai.com/v1`; see [`default_base_url`] for each provider
    /// (Anthropic and Google take the bare host).
    pub base_url: &'a Url,
    pub key: &'a SecretString,
    pub model: &'a str,
    pub messages: &'a [Message],
    pub max_tokens: Option<u32>,
    /// Functions the model may call; [`Tools::default`] offers none.
    pub tools: Tools<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// A piece of assistant text.
    Token(String),
    ToolCall(ToolCall),
    /// Token counts: provider-reported, or estimated when the stream ended without a usage chunk.
    Usage {
        input_tokens: u64,
        output_tokens: u64,
        estimated: bool,
    },
    /// The stream ended normally (`finish_reason` as sent).
    Done {
        finish_reason: Option<String>,
    },
    Error(LlmError),
}

/// A streaming chat completion provider. Dropping the receiver cancels the request. Its name (the
/// rate table's) is where [`registry`] lists it, and nowhere else.
#[async_trait::async_trait]
pub trait Llm: Send + Sync {
    /// Start a streaming completion. HTTP errors before the stream starts are returned here.
    async fn stream(&self, req: LlmRequest<'_>) -> Result<mpsc::Receiver<LlmEvent>, LlmError>;
}
