//! Local stand-ins for TTS providers, shaped like wiremock: `start()` binds 127.0.0.1:0,
//! `base_url()` points an adapter at it, dropping it stops it. Used by tests, sandbox mode
//! and `switchboard sim`.

mod elevenlabs;
pub mod registry;
mod voice;

pub use elevenlabs::{ElevenLabsSim, ElevenLabsSimConfig};
pub use simkit::{RunningSim, SimKeys, Tuning};
