//! Local stand-ins for TTS providers, shaped like wiremock: `start()` binds 127.0.0.1:0,
//! `base_url()` points an adapter at it, dropping it stops it. Used by tests, sandbox mode
//! and `switchboard sim`.

mod azure;
mod cartesia;
mod deepgram;
mod elevenlabs;
mod pacer;
mod polly;
pub mod registry;
mod rime;
mod soniox;
mod speech;
mod voice;
mod wire_server;
mod xai;

pub use azure::{AzureTtsSim, AzureTtsSimConfig};
pub use cartesia::{CartesiaSim, CartesiaSimConfig};
pub use deepgram::{DeepgramTtsSim, DeepgramTtsSimConfig};
pub use elevenlabs::{ElevenLabsSim, ElevenLabsSimConfig};
pub use polly::{PollySim, PollySimConfig};
pub use rime::{RimeSim, RimeSimConfig};
pub use simkit::{RunningSim, SimKeys, Tuning};
pub use soniox::{SonioxSim, SonioxSimConfig};
pub use xai::{XaiSim, XaiSimConfig};
