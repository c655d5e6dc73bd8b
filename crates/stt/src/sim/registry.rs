//! Simulator name → start function. A new simulator = its module plus one line in [`SIMS`].

use super::{deepgram, Catalog, SimKeys};
use std::sync::Arc;

/// Starts one simulator: the keys it accepts, `switchboard sim`'s tuning, and the recordings
/// it can recognize.
pub type StartFn = fn(SimKeys, simkit::Tuning, Arc<Catalog>) -> simkit::StartFuture;

/// Every STT simulator, by the provider name it stands in for.
pub const SIMS: &[(&str, StartFn)] = &[
    ("transcribe", super::transcribe::start),
    ("assemblyai", super::assemblyai::start),
    ("soniox", super::soniox::start),
    ("azure", super::azure::start),
    ("deepgram", deepgram::start),
    ("elevenlabs", super::elevenlabs::start),
    ("cartesia", super::cartesia::start),
    ("gladia", super::gladia::start),
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
