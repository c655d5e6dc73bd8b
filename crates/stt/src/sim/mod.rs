//! Local stand-ins for STT providers, shaped like wiremock: `start()` binds 127.0.0.1:0,
//! `base_url()` points an adapter at it, dropping it stops it. Used by tests, sandbox mode and
//! `switchboard sim`.
//!
//! A simulator "recognizes" speech by comparing the loudness envelope of each VAD segment with a
//! [`Catalog`] of recordings whose transcripts are known; the envelope survives the telephone
//! path (8 kHz µ-law and back) well enough to pick the right utterance.

mod assemblyai;
mod azure;
mod cartesia;
mod catalog;
mod deepgram;
mod elevenlabs;
mod fingerprint;
mod gladia;
mod recognizer;
pub mod registry;
mod segmenter;
mod soniox;
#[cfg(test)]
pub(crate) mod testdata;
mod transcribe;
mod wsconn;

pub use assemblyai::{AssemblyAiSim, AssemblyAiSimConfig};
pub use azure::{AzureSttSim, AzureSttSimConfig};
pub use cartesia::{CartesiaSim, CartesiaSimConfig};
pub use catalog::{Catalog, CatalogError, Utterance};
pub use deepgram::{DeepgramSim, DeepgramSimConfig};
pub use elevenlabs::{ElevenLabsSim, ElevenLabsSimConfig};
pub use gladia::{GladiaSim, GladiaSimConfig};
pub use simkit::{RunningSim, SimKeys, Tuning};
pub use soniox::{SonioxSim, SonioxSimConfig};
pub use transcribe::{TranscribeSim, TranscribeSimConfig};
