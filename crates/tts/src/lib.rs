//! Streaming text-to-speech: one [`Tts`] trait, one module per provider. The simulators the
//! tests and sandbox mode point these adapters at live in the `tts-sim` crate.
//!
//! # Invariants
//! - Adapters hold no key: key and base URL come with each [`TtsRequest`].
//! - Usage is reported in the provider's unit (characters sent), counted by the adapter.

mod azure;
mod cartesia;
mod deepgram;
mod elevenlabs;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod polly;
pub mod registry;
mod rime;
mod socket;
mod soniox;
mod xai;

/// Wire formats the `tts-sim` simulators speak too, so each message is defined once.
#[doc(hidden)]
pub mod wire {
    pub use crate::azure::wire as azure;
}

pub use azure::Azure;
pub use cartesia::Cartesia;
pub use deepgram::DeepgramTts;
pub use elevenlabs::{ElevenLabs, SAMPLE_RATES};
pub use error::TtsError;
pub use polly::Polly;
pub use rime::Rime;
pub use soniox::Soniox;
pub use xai::Xai;

use bytes::Bytes;
use secrecy::SecretString;
use tokio::sync::mpsc;
use url::Url;

/// What a session asks of a synthesizer at connect time.
pub struct TtsRequest<'a> {
    pub base_url: &'a Url,
    pub key: &'a SecretString,
    pub model: &'a str,
    pub voice: &'a str,
    /// Output sample rate of linear16 mono PCM wanted back (8000, 16000, 22050, 24000, 44100).
    pub sample_rate: u32,
}

/// Input to a running synthesizer: text pieces, then flush at end of the agent's turn.
#[derive(Debug, Clone)]
pub enum TtsInput {
    Text(String),
    /// Generate everything buffered now (end of an LLM turn).
    Flush,
    /// End of stream: generate the rest, report usage, close.
    Close,
}

/// Character timing for audio already delivered, in ms from the start of this stream's audio.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alignment {
    pub chars: Vec<char>,
    pub start_ms: Vec<u32>,
    pub duration_ms: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TtsEvent {
    /// linear16 LE mono PCM at the requested sample rate, with optional alignment.
    Audio {
        pcm: Bytes,
        alignment: Option<Alignment>,
    },
    /// All text sent so far has been synthesized (the provider's `isFinal`).
    Done,
    /// Billable characters sent to the provider: the CUMULATIVE count on this stream, so the
    /// last one seen is the total (sent after each flush and once more before the stream ends).
    Usage {
        characters: u64,
    },
    Error(TtsError),
}

/// The two halves of a running synthesizer. Dropping `text` closes it.
pub struct TtsStream {
    pub text: mpsc::Sender<TtsInput>,
    pub events: mpsc::Receiver<TtsEvent>,
}

/// A streaming text-to-speech provider. Its name (the rate table's) is where [`registry`]
/// lists it, and nowhere else.
#[async_trait::async_trait]
pub trait Tts: Send + Sync {
    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError>;
    /// The cheapest real call that proves `key` works, for `POST /api/credentials/check`.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError>;
}

/// [`Tts::check_key`] for websocket providers: open a stream with `model`/`voice`, send
/// nothing, and wait briefly for a refusal (some carry the key in the first message, so the
/// refusal can come after the handshake).
pub async fn check_by_connecting(
    tts: &dyn Tts,
    base_url: &Url,
    key: &SecretString,
    model: &str,
    voice: &str,
) -> Result<(), TtsError> {
    let stream = tts.connect(TtsRequest { base_url, key, model, voice, sample_rate: 16000 }).await?;
    let mut events = stream.events;
    drop(stream.text);
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(2), events.recv()).await {
            Ok(Some(TtsEvent::Error(e))) => return Err(e),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return Ok(()),
        }
    }
}
