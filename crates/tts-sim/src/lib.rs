//! Local stand-ins for the TTS providers of the `tts` crate, shaped like wiremock:
//! `XSim::start(keys, config)` binds 127.0.0.1:0, `base_url()` points an adapter at it,
//! dropping it stops it. Used by tests, sandbox mode and `switchboard sim`; a crate of its own
//! so production builds of `tts` carry no server code.
//!
//! Every simulator is a [`simkit::Service`] on simkit's one loopback server ([`SimServer`]):
//! the service routes each request like its provider (REST key checks, refusals, websocket
//! upgrades; Polly's streamed REST bodies) and runs the accepted sockets. `XSim` is
//! `SimServer<X>`, so keys, seen keys and the stream and character counters are the same on
//! each; a service's own counters are on `sim.service()`.

mod azure;
mod cartesia;
mod deepgram;
mod elevenlabs;
mod frame;
mod pacer;
mod polly;
#[cfg(test)]
mod raw;
pub mod registry;
mod rime;
mod soniox;
mod speech;
mod voice;
mod voicing;
mod xai;

pub use azure::{Azure, AzureTtsSim, AzureTtsSimConfig};
pub use cartesia::{CartesiaSim, CartesiaSimConfig};
pub use deepgram::{DeepgramTtsSim, DeepgramTtsSimConfig};
pub use elevenlabs::{ElevenLabs, ElevenLabsSim, ElevenLabsSimConfig};
pub use polly::{Polly, PollySim, PollySimConfig};
pub use rime::{RimeSim, RimeSimConfig};
pub use simkit::{RunningSim, SimKeys, SimServer, Tuning};
pub use soniox::{Soniox, SonioxSim, SonioxSimConfig};
pub use voicing::Voicing;
pub use xai::{XaiSim, XaiSimConfig};
