//! Streaming speech-to-text: one [`Stt`] trait, one module per provider, and protocol-faithful
//! simulators in [`sim`].
//!
//! # Layout
//! - [`Stt`] — connect a streaming recognizer; you get an audio sender and an event receiver.
//! - [`registry::build`] — provider name → adapter. A new provider is `mod foo;` plus one line there.
//! - [`sim`] — loopback servers that speak the provider side of each protocol, used by the tests
//!   and by sandbox mode.
//!
//! # Invariants
//! - Adapters hold no key: key and base URL come with each [`SttRequest`], so a simulator is just
//!   another URL and a session keeps the key it was planned with.
//! - Usage is reported in the provider's own unit (audio milliseconds); pricing happens elsewhere.
//! - Every stream ends with exactly one [`SttEvent::Usage`] (after an [`SttEvent::Error`] if the
//!   stream failed), then the event channel closes. Read until `None` to bill correctly.

mod assemblyai;
mod azure;
mod cartesia;
mod deepgram;
mod elevenlabs;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod gladia;
pub mod registry;
pub mod sim;
mod soniox;
mod transcribe;
mod wspump;

pub use assemblyai::AssemblyAi;
pub use azure::Azure;
pub use cartesia::Cartesia;
pub use deepgram::Deepgram;
pub use elevenlabs::ElevenLabs;
pub use error::SttError;
pub use gladia::Gladia;
pub use soniox::Soniox;
pub use transcribe::Transcribe;

use bytes::Bytes;
use secrecy::SecretString;
use tokio::sync::mpsc;
use url::Url;

/// What a session asks of a recognizer at connect time.
pub struct SttRequest<'a> {
    /// Provider base URL, e.g. `wss://api.deepgram.com` or a simulator's `ws://127.0.0.1:port`.
    pub base_url: &'a Url,
    pub key: &'a SecretString,
    pub model: &'a str,
    /// Sample rate of the linear16 mono audio that will be sent.
    pub sample_rate: u32,
    pub language: &'a str,
}

/// Input to a running recognizer. Audio is linear16 little-endian mono at the requested rate.
#[derive(Debug, Clone)]
pub enum SttInput {
    Audio(Bytes),
    /// Flush buffered audio into a final result now (end of turn decided locally).
    Finalize,
    KeepAlive,
    /// Finish: the provider sends remaining results and its usage summary, then closes.
    Close,
}

/// A recognizer's output, provider-neutral.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// A hypothesis that will be replaced.
    Interim {
        text: String,
        start_s: f64,
        end_s: f64,
    },
    /// Fixed text for a window; `speech_final` when the provider's endpointing saw end of speech.
    Final {
        text: String,
        start_s: f64,
        end_s: f64,
        speech_final: bool,
    },
    SpeechStarted {
        at_s: f64,
    },
    UtteranceEnd {
        last_word_end_s: f64,
    },
    /// Billable audio in milliseconds: the CUMULATIVE total of this stream, so the last one seen
    /// is the total (never add them up). `estimated` when counted locally from audio sent because
    /// the provider's own figure (Deepgram `Metadata.duration`) never arrived.
    Usage {
        audio_ms: u64,
        estimated: bool,
    },
    /// The stream failed; only the closing [`SttEvent::Usage`] follows.
    Error(SttError),
}

/// The two halves of a running recognizer. Dropping `audio` is treated like [`SttInput::Close`].
pub struct SttStream {
    pub audio: mpsc::Sender<SttInput>,
    pub events: mpsc::Receiver<SttEvent>,
}

/// A streaming speech-to-text provider.
#[async_trait::async_trait]
pub trait Stt: Send + Sync {
    /// Provider name as used in the rate table (`deepgram`).
    fn name(&self) -> &'static str;
    /// Open a streaming session. Fails before any audio is sent when the key is refused.
    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError>;
    /// The cheapest real call that proves `key` works, for `POST /api/credentials/check`.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError>;
}

/// [`Stt::check_key`] for streaming providers that refuse a bad key at the handshake: open a
/// stream with `model` and close it at once.
pub async fn check_by_connecting(
    stt: &dyn Stt,
    base_url: &Url,
    key: &SecretString,
    model: &str,
) -> Result<(), SttError> {
    let stream = stt.connect(SttRequest { base_url, key, model, sample_rate: 16000, language: "en" }).await?;
    let _ = stream.audio.send(SttInput::Close).await;
    Ok(())
}
