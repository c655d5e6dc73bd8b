//! Local stand-ins for STT providers, shaped like wiremock: `start()` binds 127.0.0.1:0,
//! `base_url()` points an adapter at it, dropping it stops it. Used by tests, sandbox mode and
//! `switchboard sim`.
//!
//! A simulator "recognizes" speech by comparing the loudness envelope of each VAD segment with a
//! [`Catalog`] of recordings whose transcripts are known; the envelope survives the telephone
//! path (8 kHz µ-law and back) well enough to pick the right utterance.

mod catalog;
mod deepgram;
mod fingerprint;
mod recognizer;
pub mod registry;
mod segmenter;
#[cfg(test)]
pub(crate) mod testdata;

pub use catalog::{Catalog, CatalogError, Utterance};
pub use deepgram::{DeepgramSim, DeepgramSimConfig};
pub use simkit::{RunningSim, SimKeys, Tuning};
