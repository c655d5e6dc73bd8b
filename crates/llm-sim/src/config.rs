//! What a simulator is started with: the keys it accepts, its pacing and a scripted fault.

use simkit::{SimKeys, Tuning};
use std::time::Duration;

/// A failure to inject into every completion request, whatever the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with the provider's error body before streaming (429 adds the
    /// provider's retry hint).
    Status(u16),
    /// Cut the connection after this many content tokens: no finish, usage or end marker.
    DropAfterTokens(usize),
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Accepted keys; clones share the set, so a test can add one while the sim runs.
    pub keys: SimKeys,
    /// Time to the first content token.
    pub first_token_delay: Duration,
    /// Pace of the following tokens; `<= 0` streams them back to back.
    pub tokens_per_sec: f64,
    pub fault: Option<Fault>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_token_delay: Duration::from_millis(350),
            tokens_per_sec: 60.0,
            fault: None,
        }
    }
}

impl SimConfig {
    /// `switchboard sim`'s latencies and fault (`--sim-llm-*`) for these keys.
    pub fn from_tuning(keys: SimKeys, t: &Tuning) -> Self {
        Self {
            keys,
            first_token_delay: t.llm_first_token,
            tokens_per_sec: t.llm_tokens_per_sec,
            fault: t.llm_drop_after_tokens.map(Fault::DropAfterTokens),
        }
    }

    /// Every token at once, for tests of content rather than timing.
    pub fn instant(keys: SimKeys) -> Self {
        Self { keys, first_token_delay: Duration::ZERO, tokens_per_sec: 0.0, fault: None }
    }
}
