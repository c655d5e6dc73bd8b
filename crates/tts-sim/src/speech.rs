//! Paced synthetic speech for one simulated stream: text in, audio pieces due at wall-clock
//! times out, each rendered by [`Voice`] as s16le PCM with per-character timings. Shared by the
//! simulators whose providers voice text as it arrives (xAI, Soniox, ElevenLabs multi-context).

use crate::voice::Voice;
use crate::Voicing;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

struct Piece {
    due: Instant,
    chars: Vec<char>,
}

/// One rendered piece, borrowed from the speaker's reused buffers.
pub(crate) struct Spoken<'a> {
    /// s16le mono at the stream's rate.
    pub pcm: &'a [u8],
    pub chars: &'a [char],
    /// Index of the first character since the utterance started; times are `index × ms_per_char`.
    pub first_index: u64,
    pub ms_per_char: u64,
    /// No further piece is queued: the generation is complete.
    pub last: bool,
}

pub(crate) struct Speaker {
    voice: Voice,
    rate: u64,
    ms_per_char: u64,
    chars_per_piece: usize,
    pace: f64,
    first_audio_delay: Duration,
    pieces: VecDeque<Piece>,
    /// When the audio already queued has been produced; a new generation starts no earlier.
    next_free: Instant,
    /// Characters voiced since the utterance started: the timing clock.
    voiced: u64,
    samples: Vec<i16>,
    bytes: Vec<u8>,
    chars: Vec<char>,
}

impl Speaker {
    /// A speaker for a stream at `sample_rate`.
    pub(crate) fn new(v: &Voicing, sample_rate: u32) -> Self {
        Self {
            voice: Voice::new(sample_rate),
            rate: u64::from(sample_rate),
            ms_per_char: u64::from(v.ms_per_char.max(1)),
            chars_per_piece: v.chars_per_piece(),
            pace: v.pace(),
            first_audio_delay: v.first_audio_delay,
            pieces: VecDeque::new(),
            next_free: Instant::now(),
            voiced: 0,
            samples: Vec::new(),
            bytes: Vec::new(),
            chars: Vec::new(),
        }
    }

    /// Queues a generation: first audio `first_audio_delay` after `now` (or after audio already
    /// queued), then one piece per `piece_ms` of audio at `pace`.
    pub(crate) fn say(&mut self, text: &str, now: Instant) {
        let chars: Vec<char> = text.chars().collect();
        let mut due = (now + self.first_audio_delay).max(self.next_free);
        for piece in chars.chunks(self.chars_per_piece) {
            self.pieces.push_back(Piece { due, chars: piece.to_vec() });
            let audio_ms = piece.len() as f64 * self.ms_per_char as f64;
            due += Duration::from_secs_f64(audio_ms / 1000.0 / self.pace);
        }
        self.next_free = due;
    }

    /// When the next piece is due, if any is queued.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.pieces.front().map(|p| p.due)
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Characters voiced since the utterance started.
    pub(crate) fn voiced(&self) -> u64 {
        self.voiced
    }

    /// Drops queued audio (barge-in / cancel).
    pub(crate) fn cancel(&mut self) {
        self.pieces.clear();
        self.next_free = Instant::now();
    }

    /// A new utterance: timings and the voice's sample clock start again at zero.
    pub(crate) fn restart(&mut self) {
        self.cancel();
        self.voice = Voice::new(self.rate as u32);
        self.voiced = 0;
    }

    /// Renders the next queued piece. Sample boundaries are cumulative from the utterance
    /// start, so the total length is exactly `chars × ms_per_char` however the pieces fall.
    pub(crate) fn next(&mut self) -> Option<Spoken<'_>> {
        let piece = self.pieces.pop_front()?;
        let ms = self.ms_per_char;
        self.samples.clear();
        for (i, &c) in piece.chars.iter().enumerate() {
            let g = self.voiced + i as u64;
            self.voice.render(c, (g + 1) * ms * self.rate / 1000, &mut self.samples);
        }
        let first_index = self.voiced;
        self.voiced += piece.chars.len() as u64;
        self.bytes.clear();
        self.bytes.extend(self.samples.iter().flat_map(|s| s.to_le_bytes()));
        self.chars = piece.chars;
        Some(Spoken {
            pcm: &self.bytes,
            chars: &self.chars,
            first_index,
            ms_per_char: ms,
            last: self.pieces.is_empty(),
        })
    }
}

/// Splits a text buffer for providers that voice text as it streams: everything up to the last
/// whitespace is ready; the unfinished word waits. Returns `None` when nothing is ready.
pub(crate) fn take_complete_words(buf: &mut String) -> Option<String> {
    let ws = buf.rfind(char::is_whitespace)?;
    let chunk: String = buf.drain(..ws).collect();
    (!chunk.trim().is_empty()).then_some(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_follows_text_and_timings_restart_per_utterance() {
        let voicing = Voicing { piece_ms: 100, pace: 1000.0, first_audio_delay: Duration::ZERO, ..Voicing::default() };
        let mut s = Speaker::new(&voicing, 16000);
        s.say("Hello", Instant::now());
        let mut bytes = 0;
        let mut firsts = Vec::new();
        while let Some(p) = s.next() {
            bytes += p.pcm.len();
            firsts.push(p.first_index);
        }
        assert_eq!(bytes, 5 * 800 * 2);
        assert_eq!(firsts, [0, 2, 4]);
        s.restart();
        s.say("Hi", Instant::now());
        assert_eq!(s.next().map(|p| (p.first_index, p.last)), Some((0, true)));
    }

    #[test]
    fn complete_words_only() {
        let mut b = String::from("Hello there, fri");
        assert_eq!(take_complete_words(&mut b).as_deref(), Some("Hello there,"));
        assert_eq!(b, " fri");
        assert_eq!(take_complete_words(&mut b), None);
        assert_eq!(b, " fri");
    }
}
