//! Local stand-ins for LLM providers, shaped like wiremock: `start()` binds 127.0.0.1:0,
//! `base_url()` points an adapter at it, dropping it stops it. Used by tests, sandbox mode and
//! `switchboard sim`. They speak the provider's wire protocol, including its auth failures, and
//! all answer with the same deterministic [`reply_for`] text and token counts.
//!
//! The OpenAI sim also stands in for the OpenAI-compatible family (same protocol).

mod anthropic;
mod azure;
mod bedrock;
mod gemini;
mod openai;
mod paced;
pub mod registry;
pub mod replies;
mod server;

pub use anthropic::{AnthropicSim, AnthropicSimConfig};
pub use azure::{AzureSim, AzureSimConfig};
pub use bedrock::{BedrockSim, BedrockSimConfig};
pub use gemini::{GeminiSim, GeminiSimConfig};
pub use openai::responses::ToolScript;
pub use openai::{Fault, OpenAiSim, OpenAiSimConfig};
pub use replies::reply_for;
pub use simkit::{RunningSim, SimKeys, Tuning};
