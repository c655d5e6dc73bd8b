//! Pacing and rendering for the Cartesia, Deepgram and Rime simulators: a queue of outgoing
//! items due at wall-clock times (audio pieces, then the messages that follow them), and a
//! per-stream renderer whose sample count follows the text exactly.

use crate::voice::Voice;
use crate::Voicing;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// What is due next on one connection, in order.
pub(crate) struct Schedule<T> {
    items: VecDeque<(Instant, T)>,
    voicing: Voicing,
    /// When the audio queued so far has been produced; a new generation starts no earlier.
    next_free: Instant,
    /// Due time of the last item queued, so later items never overtake it.
    last_due: Instant,
}

impl<T> Schedule<T> {
    pub(crate) fn new(voicing: Voicing) -> Self {
        let now = Instant::now();
        Self { items: VecDeque::new(), voicing, next_free: now, last_due: now }
    }

    pub(crate) fn ms_per_char(&self) -> u64 {
        u64::from(self.voicing.ms_per_char.max(1))
    }

    /// Queues `text` as audio pieces of about `piece_ms` each, built by `piece`.
    pub(crate) fn speak(&mut self, text: &str, now: Instant, mut piece: impl FnMut(Vec<char>) -> T) {
        let chars: Vec<char> = text.chars().collect();
        let (per_piece, pace) = (self.voicing.chars_per_piece(), self.voicing.pace());
        let mut due = (now + self.voicing.first_audio_delay).max(self.next_free);
        for p in chars.chunks(per_piece) {
            self.items.push_back((due, piece(p.to_vec())));
            self.last_due = due;
            let audio_ms = (p.len() as u64 * self.ms_per_char()) as f64;
            due += Duration::from_secs_f64(audio_ms / 1000.0 / pace);
        }
        self.next_free = due;
    }

    /// Queues `item` right after everything already queued.
    pub(crate) fn then(&mut self, item: T, now: Instant) {
        let due = now.max(self.last_due);
        self.items.push_back((due, item));
        self.last_due = due;
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.items.front().map(|(due, _)| *due)
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop_front().map(|(_, t)| t)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drops queued items (a cancelled context, a cleared buffer); the voice clock is untouched.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        let mut keep = keep;
        self.items.retain(|(_, t)| keep(t));
        if self.items.is_empty() {
            let now = Instant::now();
            self.next_free = now;
            self.last_due = now;
        }
    }
}

/// Renders one stream's characters; times count from the stream's first character.
pub(crate) struct Renderer {
    voice: Voice,
    rate: u64,
    ms_per_char: u64,
    /// Characters rendered so far.
    voiced: u64,
    samples: Vec<i16>,
    bytes: Vec<u8>,
}

impl Renderer {
    pub(crate) fn new(sample_rate: u32, ms_per_char: u32) -> Self {
        Self {
            voice: Voice::new(sample_rate),
            rate: u64::from(sample_rate),
            ms_per_char: u64::from(ms_per_char.max(1)),
            voiced: 0,
            samples: Vec::new(),
            bytes: Vec::new(),
        }
    }

    /// s16le PCM for `chars`. Sample boundaries are cumulative from the stream start, so the
    /// total is exactly `chars × ms_per_char` however the pieces fall.
    pub(crate) fn render(&mut self, chars: &[char]) -> &[u8] {
        self.samples.clear();
        for &c in chars {
            self.voiced += 1;
            self.voice.render(c, self.voiced * self.ms_per_char * self.rate / 1000, &mut self.samples);
        }
        self.bytes.clear();
        self.bytes.extend(self.samples.iter().flat_map(|s| s.to_le_bytes()));
        &self.bytes
    }

    pub(crate) fn voiced(&self) -> u64 {
        self.voiced
    }
}

/// Word timestamps in seconds for `text` voiced from character `first` on: each
/// whitespace-separated word spans its own characters.
pub(crate) fn word_times(text: &str, first: u64, ms_per_char: u64) -> serde_json::Value {
    let (mut words, mut start, mut end) = (Vec::new(), Vec::new(), Vec::new());
    let mut word = String::new();
    let mut word_start = 0u64;
    let secs = |i: u64| (i * ms_per_char) as f64 / 1000.0;
    for (i, c) in text.chars().chain(std::iter::once(' ')).enumerate() {
        let i = first + i as u64;
        if c.is_whitespace() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
                start.push(secs(word_start));
                end.push(secs(i));
            }
        } else {
            if word.is_empty() {
                word_start = i;
            }
            word.push(c);
        }
    }
    serde_json::json!({"words": words, "start": start, "end": end})
}

/// Index just past the last sentence end (`.`, `!`, `?` followed by whitespace) in `buf`.
pub(crate) fn sentence_cut(buf: &str) -> Option<usize> {
    let mut cut = None;
    let mut prev_end = false;
    for (i, c) in buf.char_indices() {
        if prev_end && c.is_whitespace() {
            cut = Some(i);
        }
        prev_end = matches!(c, '.' | '!' | '?');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_length_follows_the_text_at_any_rate() {
        for rate in [8000u32, 22050, 44100] {
            let mut r = Renderer::new(rate, 50);
            let n: usize =
                ["Hel", "lo there", "."].iter().map(|p| r.render(&p.chars().collect::<Vec<_>>()).len()).sum();
            assert_eq!(n as u64, 12 * 50 * u64::from(rate) / 1000 * 2, "rate {rate}");
            assert_eq!(r.voiced(), 12);
        }
    }

    #[test]
    fn word_times_and_sentence_cuts() {
        let w = word_times("Hi  you.", 2, 50);
        assert_eq!(w["words"], serde_json::json!(["Hi", "you."]));
        assert_eq!(w["start"], serde_json::json!([0.1, 0.3]));
        assert_eq!(w["end"], serde_json::json!([0.2, 0.5]));
        assert_eq!(sentence_cut("One. Two! Thr"), Some(9));
        assert_eq!(sentence_cut("No end."), None);
        assert_eq!(sentence_cut("3.5 is"), None);
    }

    #[test]
    fn schedule_keeps_order_and_paces_audio() {
        let voicing = Voicing { piece_ms: 100, first_audio_delay: Duration::from_millis(10), ..Voicing::default() };
        let mut s: Schedule<String> = Schedule::new(voicing);
        let now = Instant::now();
        s.speak("abcde", now, |c| c.into_iter().collect());
        s.then("done".into(), now);
        let first = s.next_due().unwrap();
        assert_eq!(first - now, Duration::from_millis(10));
        let mut got = Vec::new();
        while let Some(t) = s.pop() {
            got.push(t);
        }
        assert_eq!(got, ["ab", "cd", "e", "done"]);
        assert!(s.is_empty());
    }
}
