//! Simulator name → start function. A new simulator = its module plus one line in [`SIMS`].
//! The OpenAI simulator also serves the OpenAI-compatible family (same protocol).

use super::*;
use simkit::{RunningSim, StartFuture, Tuning};

/// Starts one simulator with the keys it accepts and `switchboard sim`'s tuning.
pub type StartFn = fn(SimKeys, Tuning) -> StartFuture;

/// Every LLM simulator, by the provider name it stands in for.
pub const SIMS: &[(&str, StartFn)] =
    &[("openai", openai), ("anthropic", anthropic), ("google", google), ("azure", azure), ("bedrock", bedrock)];

fn openai(keys: SimKeys, t: Tuning) -> StartFuture {
    Box::pin(async move {
        let cfg = OpenAiSimConfig {
            keys,
            first_token_delay: t.llm_first_token,
            tokens_per_sec: t.llm_tokens_per_sec,
            fault: t.llm_drop_after_tokens.map(Fault::DropAfterTokens),
        };
        Ok(Box::new(OpenAiSim::start(cfg).await?) as Box<dyn RunningSim>)
    })
}

fn anthropic(keys: SimKeys, t: Tuning) -> StartFuture {
    Box::pin(async move {
        let cfg = AnthropicSimConfig {
            keys,
            first_token_delay: t.llm_first_token,
            tokens_per_sec: t.llm_tokens_per_sec,
            ..Default::default()
        };
        Ok(Box::new(AnthropicSim::start(cfg).await?) as Box<dyn RunningSim>)
    })
}

fn google(keys: SimKeys, t: Tuning) -> StartFuture {
    Box::pin(async move {
        let cfg = GeminiSimConfig {
            keys,
            first_token_delay: t.llm_first_token,
            tokens_per_sec: t.llm_tokens_per_sec,
            ..Default::default()
        };
        Ok(Box::new(GeminiSim::start(cfg).await?) as Box<dyn RunningSim>)
    })
}

fn azure(keys: SimKeys, t: Tuning) -> StartFuture {
    Box::pin(async move {
        let cfg = AzureSimConfig {
            keys,
            first_token_delay: t.llm_first_token,
            tokens_per_sec: t.llm_tokens_per_sec,
            ..Default::default()
        };
        Ok(Box::new(AzureSim::start(cfg).await?) as Box<dyn RunningSim>)
    })
}

fn bedrock(keys: SimKeys, t: Tuning) -> StartFuture {
    Box::pin(async move {
        let cfg = BedrockSimConfig {
            keys,
            first_token_delay: t.llm_first_token,
            tokens_per_sec: t.llm_tokens_per_sec,
            ..Default::default()
        };
        Ok(Box::new(BedrockSim::start(cfg).await?) as Box<dyn RunningSim>)
    })
}
