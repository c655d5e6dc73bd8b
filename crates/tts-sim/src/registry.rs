//! Simulator name → start function. A new simulator = its module plus one line in [`SIMS`].

use crate::{
    Azure, AzureTtsSimConfig, CartesiaSimConfig, DeepgramTtsSimConfig, ElevenLabs, ElevenLabsSimConfig, Polly,
    PollySimConfig, RimeSimConfig, SimKeys, Soniox, SonioxSimConfig, Tuning, XaiSimConfig,
};
use simkit::{RunningSim, Service, SimServer, StartFuture};

/// Starts one simulator with the keys it accepts and `switchboard sim`'s tuning.
pub type StartFn = fn(SimKeys, Tuning) -> StartFuture;

/// A simulator's default config with `switchboard sim`'s latencies and fault (every TTS
/// simulator's config holds its [`crate::Voicing`]).
macro_rules! tuned {
    ($config:ident, $t:expr) => {{
        let mut config = $config::default();
        config.voicing = config.voicing.tuned(&$t);
        config
    }};
}

/// Every TTS simulator, by the provider name it stands in for.
pub const SIMS: &[(&str, StartFn)] = &[
    ("polly", |keys, t| boxed(keys, Polly::from(tuned!(PollySimConfig, t)))),
    ("elevenlabs", |keys, t| boxed(keys, ElevenLabs::from(tuned!(ElevenLabsSimConfig, t)))),
    ("azure", |keys, t| boxed(keys, Azure::from(tuned!(AzureTtsSimConfig, t)))),
    ("xai", |keys, t| boxed(keys, tuned!(XaiSimConfig, t))),
    ("soniox", |keys, t| boxed(keys, Soniox::from(tuned!(SonioxSimConfig, t)))),
    ("cartesia", |keys, t| boxed(keys, tuned!(CartesiaSimConfig, t))),
    ("deepgram", |keys, t| boxed(keys, tuned!(DeepgramTtsSimConfig, t))),
    ("rime", |keys, t| boxed(keys, tuned!(RimeSimConfig, t))),
];

fn boxed<S: Service>(keys: SimKeys, service: S) -> StartFuture {
    Box::pin(async move { Ok(Box::new(SimServer::start(keys, service).await?) as Box<dyn RunningSim>) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_adapter_has_a_simulator() {
        for name in tts::registry::names() {
            assert!(SIMS.iter().any(|(n, _)| *n == name), "{name} has no simulator");
        }
    }
}
