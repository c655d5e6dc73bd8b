//! Simulator name → start function. A new simulator = its module plus one line in [`SIMS`].

use crate::{AssemblyAiSim, AzureSttSim, CartesiaSim, DeepgramSim, ElevenLabsSim, GladiaSim, SimConfig};
use crate::{SonioxSim, TranscribeSim};

/// Starts one simulator on 127.0.0.1:0 as a type-erased [`simkit::RunningSim`].
pub type StartFn = fn(SimConfig) -> simkit::StartFuture;

/// Every STT simulator, by the provider name it stands in for.
pub const SIMS: &[(&str, StartFn)] = &[
    ("transcribe", boxed::<TranscribeSim>),
    ("assemblyai", boxed::<AssemblyAiSim>),
    ("soniox", boxed::<SonioxSim>),
    ("azure", boxed::<AzureSttSim>),
    ("deepgram", boxed::<DeepgramSim>),
    ("elevenlabs", boxed::<ElevenLabsSim>),
    ("cartesia", boxed::<CartesiaSim>),
    ("gladia", boxed::<GladiaSim>),
];

/// The start function of the simulator standing in for `name`.
pub fn start_fn(name: &str) -> Option<StartFn> {
    SIMS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

fn boxed<S: simkit::Service + From<SimConfig>>(cfg: SimConfig) -> simkit::StartFuture {
    Box::pin(async move { Ok(Box::new(crate::start::<S>(cfg).await?) as Box<dyn simkit::RunningSim>) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_adapter_has_a_simulator() {
        for name in stt::registry::names() {
            assert!(start_fn(name).is_some(), "{name} has no simulator");
        }
    }
}
