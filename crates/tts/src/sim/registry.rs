//! Simulator name → start function. A new simulator = its module plus one line in [`SIMS`].

use super::{elevenlabs, SimKeys};

/// Starts one simulator with the keys it accepts and `switchboard sim`'s tuning.
pub type StartFn = fn(SimKeys, simkit::Tuning) -> simkit::StartFuture;

/// Every TTS simulator, by the provider name it stands in for.
pub const SIMS: &[(&str, StartFn)] = &[
    ("polly", super::polly::start),
    ("elevenlabs", elevenlabs::start),
    ("azure", super::azure::start),
    ("xai", super::xai::start),
    ("soniox", super::soniox::start),
    ("cartesia", super::cartesia::start),
    ("deepgram", super::deepgram::start),
    ("rime", super::rime::start),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_adapter_has_a_simulator() {
        for name in crate::registry::names() {
            assert!(SIMS.iter().any(|(n, _)| *n == name), "{name} has no simulator");
        }
    }
}
