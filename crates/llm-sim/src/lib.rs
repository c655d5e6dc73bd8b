//! Local stand-ins for the LLM providers, shaped like wiremock: [`LlmSim::start`] binds
//! 127.0.0.1:0 and serves one provider [`Api`], [`LlmSim::base_url`] points an adapter at it,
//! dropping it stops it. Used by tests, sandbox mode and `switchboard sim`. They speak the
//! provider's wire protocol, including its auth failures, and all answer with the same
//! deterministic [`reply_for`] text and token counts.
//!
//! # Layout
//! - `server`: the simulators as one service on simkit's generic server (`simkit::SimServer`:
//!   accept, request reading, key and stream counters, stop on drop): settings, request
//!   bookkeeping, the running handle; `routes`: an API's route table and the dispatch to it;
//!   `registry`: which routes each [`Api`] serves and which API stands in for which provider
//!   (the OpenAI API also serves the OpenAI-compatible family).
//! - `paced`: the paced streaming body every API's stream is written with (a simkit
//!   `Route::Stream`); [`replies`]: the deterministic conversation (reply table, tokens, token
//!   counts).
//! - One module per API (`openai`, `anthropic`, `gemini`, `azure`, `bedrock`): its routes, key
//!   check, request parsing, error bodies and stream events.
//! - [`testing`]: what tests driving an adapter against a simulator share.

mod anthropic;
mod azure;
mod bedrock;
mod config;
mod gemini;
mod openai;
mod paced;
pub mod registry;
pub mod replies;
mod routes;
mod server;
pub mod testing;
mod tools;

pub use config::{Fault, SimConfig};
pub use registry::Api;
pub use replies::reply_for;
pub use server::LlmSim;
pub use simkit::{RunningSim, SimKeys, Tuning};
