//! The knobs every STT simulator takes; defaults are close to the real services.

use crate::Catalog;
use simkit::{SimKeys, Tuning};
use std::sync::Arc;
use std::time::Duration;

/// How a simulator behaves. Protocol details that no test varies (interim cadence, endpoint
/// silence) are each simulator's own constants, set to its provider's defaults.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Accepted keys (clones share one set: tests add keys while running).
    pub keys: SimKeys,
    /// From detected end of speech to the endpointed final result.
    pub final_delay: Duration,
    /// What the simulator can "recognize"; anything else is `[speech N.N s]`.
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio on a stream, fail it the provider's way.
    pub fail_after_audio_ms: Option<u64>,
    /// A stream without audio (or keep-alive) for this long is closed the provider's way.
    /// `None`: the provider's own (Deepgram 10 s, Transcribe 15 s; never for the others).
    pub idle_timeout: Option<Duration>,
    /// The usage figure a provider reports, as a percentage of the audio received (a provider
    /// that bills less, or more, than the audio sent: reconciliation tests). Deepgram only.
    pub billed_pct: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            final_delay: Duration::from_millis(300),
            catalog: Arc::new(Catalog::empty()),
            fail_after_audio_ms: None,
            idle_timeout: None,
            billed_pct: 100,
        }
    }
}

impl SimConfig {
    /// `switchboard sim`'s tuning applied to a simulator accepting `keys`.
    pub fn new(keys: SimKeys, t: &Tuning, catalog: Arc<Catalog>) -> Self {
        Self {
            keys,
            final_delay: t.stt_final,
            catalog,
            fail_after_audio_ms: t.stt_fail_after_audio_ms,
            billed_pct: t.stt_billed_pct,
            ..Self::default()
        }
    }

    /// The idle timeout, or the provider's `default`.
    pub(crate) fn idle_or(&self, default: Option<Duration>) -> Option<Duration> {
        self.idle_timeout.or(default)
    }
}
