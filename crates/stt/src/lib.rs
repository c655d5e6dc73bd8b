//! Streaming speech-to-text: one [`Stt`] trait and one module per provider. The
//! protocol-faithful simulators the tests and sandbox mode point adapters at live in the
//! `stt-sim` crate, outside every production build.
//!
//! # Layout
//! - [`Stt`] — connect a streaming recognizer; you get an audio sender and an event receiver.
//! - [`registry::build`] — provider name → adapter. A new provider is `mod foo;` plus one line there.
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

impl SttRequest<'_> {
    /// Refuses a zero rate before dialing: chunk sizes and the audio clock derive from it.
    pub(crate) fn require_rate(&self) -> Result<(), SttError> {
        if self.sample_rate == 0 {
            return Err(SttError::Connect("sample rate must be positive".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
impl SttRequest<'static> {
    /// A request to `base` with key `k`, for the adapters' URL and config tests (leaks two small
    /// values per test so the request can outlive the call that builds it).
    pub(crate) fn for_test(base: &str, model: &'static str, sample_rate: u32, language: &'static str) -> Self {
        let base_url = Box::leak(Box::new(Url::parse(base).unwrap()));
        let key = Box::leak(Box::new(SecretString::from("k")));
        SttRequest { base_url, key, model, sample_rate, language }
    }
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

/// A streaming speech-to-text provider. Its name (the rate table's, `deepgram`) is where
/// [`registry`] lists it, and nowhere else.
#[async_trait::async_trait]
pub trait Stt: Send + Sync {
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
