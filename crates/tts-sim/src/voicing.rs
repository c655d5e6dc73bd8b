//! The knobs every TTS simulator shares: how soon, how long and how fast it speaks, and when
//! it fails. Each simulator's config holds one, with its provider's defaults.

use std::time::Duration;

/// Speech timing and the injected fault of one simulator.
#[derive(Debug, Clone, Copy)]
pub struct Voicing {
    /// From the text that triggers a generation to its first audio.
    pub first_audio_delay: Duration,
    /// Audio length per character, so duration follows the text.
    pub ms_per_char: u32,
    /// Seconds of audio produced per wall-clock second; providers run faster than real time.
    pub pace: f32,
    /// Target audio length of one audio message (or body chunk).
    pub piece_ms: u32,
    /// Fault injection: fail the stream the way the provider does (an error message, close
    /// 1011, a cut-off body) once this many characters of it are voiced.
    pub fail_after_chars: Option<u64>,
}

impl Default for Voicing {
    fn default() -> Self {
        Self {
            first_audio_delay: Duration::from_millis(150),
            ms_per_char: 50,
            pace: 2.0,
            piece_ms: 200,
            fail_after_chars: None,
        }
    }
}

impl Voicing {
    /// These knobs with `switchboard sim`'s latencies and fault.
    pub fn tuned(self, t: &simkit::Tuning) -> Self {
        Self {
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            fail_after_chars: t.tts_fail_after_chars,
            ..self
        }
    }

    /// Seconds of audio per wall-clock second, never zero or negative.
    pub(crate) fn pace(&self) -> f64 {
        let pace = f64::from(self.pace);
        if pace.is_finite() && pace > 0.0 {
            pace
        } else {
            1.0
        }
    }

    /// Characters per audio message, at least one.
    pub(crate) fn chars_per_piece(&self) -> usize {
        (self.piece_ms / self.ms_per_char.max(1)).max(1) as usize
    }

    /// Whether `voiced` characters reach the injected fault.
    pub(crate) fn fails_at(&self, voiced: u64) -> bool {
        self.fail_after_chars.is_some_and(|limit| voiced >= limit)
    }
}
