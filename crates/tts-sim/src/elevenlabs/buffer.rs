//! When the simulated server decides to generate: the chunk schedule, `try_trigger_generation`,
//! `auto_mode`, flush and EOS. Chunks end on word boundaries, so concatenated chunks rebuild
//! the text sent (minus whitespace trailing a flush).

use serde::Deserialize;

/// A first message's `generation_config`.
#[derive(Deserialize)]
pub(super) struct GenerationConfig {
    #[serde(default)]
    chunk_length_schedule: Option<Vec<u32>>,
}

/// The provider's default `chunk_length_schedule`.
pub(super) const DEFAULT_SCHEDULE: [u32; 4] = [120, 160, 250, 290];

pub(super) struct TextBuffer {
    buf: String,
    schedule: Vec<u32>,
    generations: usize,
    auto_mode: bool,
}

impl TextBuffer {
    pub(super) fn new(auto_mode: bool) -> Self {
        Self { buf: String::new(), schedule: DEFAULT_SCHEDULE.to_vec(), generations: 0, auto_mode }
    }

    /// Applies a first message's `generation_config`; false if the provider would refuse it.
    pub(super) fn configure(&mut self, config: Option<GenerationConfig>) -> bool {
        match config.and_then(|g| g.chunk_length_schedule) {
            Some(schedule) => self.set_schedule(&schedule),
            None => true,
        }
    }

    /// Replaces the schedule if every item is in the provider's 50–500 range.
    fn set_schedule(&mut self, schedule: &[u32]) -> bool {
        if schedule.is_empty() || schedule.iter().any(|&n| !(50..=500).contains(&n)) {
            return false;
        }
        self.schedule = schedule.to_vec();
        true
    }

    /// Adds text and returns a chunk to voice if the buffering policy says to generate now.
    pub(super) fn push(&mut self, text: &str, try_trigger: bool) -> Option<String> {
        self.buf.push_str(text);
        let threshold = if self.auto_mode {
            1
        } else {
            let last = self.schedule.len().saturating_sub(1);
            let scheduled = self.schedule.get(self.generations.min(last)).copied().unwrap_or(1);
            let first = self.schedule.first().copied().unwrap_or(scheduled);
            if try_trigger {
                scheduled.min(first)
            } else {
                scheduled
            }
        };
        if (self.buf.chars().count() as u64) < u64::from(threshold) {
            return None;
        }
        self.take_complete_words()
    }

    /// Flush or EOS: everything buffered, trailing whitespace dropped.
    pub(super) fn take_all(&mut self) -> Option<String> {
        let chunk = self.buf.trim_end().to_string();
        self.buf.clear();
        self.generated(chunk)
    }

    /// Text up to the last word that whitespace has closed; the rest waits for more input.
    fn take_complete_words(&mut self) -> Option<String> {
        let ws = self.buf.rfind(char::is_whitespace)?;
        let cut = self.buf.get(..ws)?.trim_end().len();
        let chunk: String = self.buf.drain(..cut).collect();
        self.generated(chunk)
    }

    fn generated(&mut self, chunk: String) -> Option<String> {
        if chunk.trim().is_empty() {
            return None;
        }
        self.generations += 1;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_mode_voices_complete_words_and_rebuilds_the_text() {
        let mut b = TextBuffer::new(true);
        let mut got = Vec::new();
        got.extend(b.push("Hello there. ", true));
        got.extend(b.push("How are yo", true));
        got.extend(b.push("u today? ", true));
        got.extend(b.take_all());
        assert_eq!(got, ["Hello there.", " How are", " you today?"]);
        assert_eq!(got.concat(), "Hello there. How are you today?");
        assert_eq!(b.take_all(), None);
    }

    #[test]
    fn schedule_mode_waits_for_enough_text() {
        let mut b = TextBuffer::new(false);
        assert!(b.set_schedule(&[50, 60]));
        assert!(!b.set_schedule(&[10]));
        let word = "word ";
        let mut first = None;
        for i in 0..10 {
            if let Some(c) = b.push(word, false) {
                first = Some((i, c));
                break;
            }
        }
        let (i, chunk) = first.unwrap();
        assert_eq!(i, 9, "50 chars reached on the 10th word");
        assert_eq!(chunk.chars().count(), 49);
        assert_eq!(b.push("x ", false), None, "second generation needs 60");
    }
}
