//! Each adapter's own cases against its simulator over loopback, beyond what every provider
//! shares (`crates/llm-sim/tests/conformance.rs`): one module per adapter, one test binary.

mod anthropic;
mod azure;
mod bedrock;
mod gemini;
mod openai;
mod openai_tools;
mod tool_rounds;

use llm::{LlmError, LlmEvent, Message};
use llm_sim::{Api, Fault, LlmSim, SimConfig, SimKeys};
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

/// `api`'s simulator accepting `keys`, tokens unpaced after a short first delay.
async fn sim(api: Api, keys: &[&str], fault: Option<Fault>) -> LlmSim {
    let cfg =
        SimConfig { first_token_delay: Duration::from_millis(5), fault, ..SimConfig::instant(SimKeys::from(keys)) };
    LlmSim::start(api, cfg).await.unwrap()
}

/// A stream from `provider`'s adapter on a fresh client.
async fn stream(
    provider: &str,
    base: &Url,
    key: &str,
    model: &str,
    messages: &[Message],
    max_tokens: Option<u32>,
) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    let adapter = llm_sim::testing::Adapter { provider, base, key, model };
    adapter.stream(messages, max_tokens, llm::Tools::default()).await
}
