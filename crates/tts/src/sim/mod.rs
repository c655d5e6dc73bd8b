//! Local stand-ins for TTS providers, shaped like wiremock: `start()` binds 127.0.0.1:0,
//! `base_url()` points an adapter at it, dropping it stops it. Used by tests, sandbox mode
//! and `switchboard sim`.

mod azure;
mod cartesia;
mod deepgram;
mod elevenlabs;
pub mod registry;
mod voice;
mod pacer;
mod polly;
mod rime;
mod wire_server;
mod soniox;
mod speech;
mod xai;

pub use azure::{AzureTtsSim, AzureTtsSimConfig};
pub use cartesia::{CartesiaSim, CartesiaSimConfig};
pub use deepgram::{DeepgramTtsSim, DeepgramTtsSimConfig};
pub use polly::{PollySim, PollySimConfig};
pub use rime::{RimeSim, RimeSimConfig};
pub use elevenlabs::{ElevenLabsSim, ElevenLabsSimConfig};
pub use soniox::{SonioxSim, SonioxSimConfig};
pub use xai::{XaiSim, XaiSimConfig};
pub use simkit::{RunningSim, SimKeys, Tuning};
