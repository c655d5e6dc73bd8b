//! Local stand-ins for the STT providers the `stt` crate speaks to, shaped like wiremock:
//! [`start`] binds 127.0.0.1:0, `base_url()` points an adapter at it, dropping it stops it.
//! Used by tests, sandbox mode and `switchboard sim`; never by a production path, which is
//! why they live outside the `stt` crate.
//!
//! Each simulator is a [`simkit::Service`] (its upgrade checks, REST endpoints and refusals,
//! answered like the provider) plus a [`simkit::Protocol`] (what each frame means and what
//! goes back, in the provider's wire format), run by the generic [`simkit::SimServer`]. They
//! share one [`SimConfig`] and, through [`audio`], one listening side.
//!
//! A simulator "recognizes" speech by comparing the loudness envelope of each VAD segment with
//! a [`Catalog`] of recordings whose transcripts are known; the envelope survives the telephone
//! path (8 kHz µ-law and back) well enough to pick the right utterance.
//!
//! # Layout
//! - [`registry::SIMS`] — provider name → start function; a new simulator is its module plus
//!   one line there.
//! - `catalog`, `fingerprint`, `segmenter`, `recognizer` — the shared recognizer.
//! - one module per provider.

/// A simulator whose whole state is its [`SimConfig`]: the struct and its `From<SimConfig>`.
macro_rules! simulator {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            cfg: $crate::SimConfig,
        }

        impl From<$crate::SimConfig> for $name {
            fn from(cfg: $crate::SimConfig) -> Self {
                Self { cfg }
            }
        }
    };
}

mod assemblyai;
mod audio;
mod azure;
mod cartesia;
mod catalog;
#[doc(hidden)]
pub mod client;
mod config;
mod deepgram;
mod elevenlabs;
mod fingerprint;
mod gladia;
mod recognizer;
pub mod registry;
mod segmenter;
mod soniox;
#[doc(hidden)]
pub mod testdata;
mod transcribe;
#[cfg(test)]
mod wire_client;

pub use assemblyai::AssemblyAiSim;
pub use azure::AzureSttSim;
pub use cartesia::CartesiaSim;
pub use catalog::{read_sidecar, Catalog, CatalogError, Utterance};
pub use config::SimConfig;
pub use deepgram::DeepgramSim;
pub use elevenlabs::ElevenLabsSim;
pub use gladia::GladiaSim;
pub use simkit::{RunningSim, SimKeys, SimServer, Tuning};
pub use soniox::SonioxSim;
pub use transcribe::TranscribeSim;

/// Starts simulator `S` on 127.0.0.1:0.
pub async fn start<S>(cfg: SimConfig) -> std::io::Result<SimServer<S>>
where
    S: simkit::Service + From<SimConfig>,
{
    start_on(tokio::net::TcpListener::bind("127.0.0.1:0").await?, cfg).await
}

/// Starts simulator `S` on a listener the caller bound (a standalone simulator on a fixed port).
pub async fn start_on<S>(listener: tokio::net::TcpListener, cfg: SimConfig) -> std::io::Result<SimServer<S>>
where
    S: simkit::Service + From<SimConfig>,
{
    SimServer::start_on(listener, cfg.keys.clone(), S::from(cfg)).await
}
