//! Local stand-ins for LLM providers, shaped like wiremock: `start()` binds 127.0.0.1:0,
//! `base_url()` points an adapter at it, dropping it stops it. Used by tests, sandbox mode and
//! `switchboard sim`. They speak the provider's wire protocol, including its auth failures.

mod keys;
mod openai;
pub mod replies;

pub use keys::SimKeys;
pub use openai::{Fault, OpenAiSim, OpenAiSimConfig};
pub use replies::reply_for;
