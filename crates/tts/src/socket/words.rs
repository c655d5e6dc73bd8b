//! Word timestamps (seconds) → our per-character [`Alignment`] (ms from the stream's start).
//!
//! Cartesia times a context from its start; Rime's clients (pipecat) treat each timestamps
//! message as starting again at zero. A message whose first word starts before the last word
//! already seen ended is taken as restarted and shifted to follow it, which serves both.

use crate::Alignment;
use serde::Deserialize;

/// `{"words":[…],"start":[…],"end":[…]}` as both providers spell it.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct WordTimes {
    pub words: Vec<String>,
    pub start: Vec<f64>,
    pub end: Vec<f64>,
}

/// The stream's word clock.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    offset_s: f64,
    last_end_s: f64,
    any: bool,
}

/// Slack for rounding in the provider's times before a message counts as restarted.
const RESTART_SLACK_S: f64 = 0.001;

impl Timeline {
    /// Appends `w`'s characters to `out`: a space between words, each word's characters
    /// sharing its span evenly. Non-finite or negative times are skipped.
    pub(crate) fn push(&mut self, w: &WordTimes, out: &mut Alignment) {
        let n = w.words.len().min(w.start.len()).min(w.end.len());
        let mut first = true;
        for i in 0..n {
            let (Some(word), Some(&s), Some(&e)) = (w.words.get(i), w.start.get(i), w.end.get(i)) else { break };
            if !s.is_finite() || !e.is_finite() || s < 0.0 || word.is_empty() {
                continue;
            }
            if first && self.any && s + self.offset_s < self.last_end_s - RESTART_SLACK_S {
                self.offset_s = self.last_end_s;
            }
            first = false;
            let start = s + self.offset_s;
            let end = (e + self.offset_s).max(start);
            if self.any {
                out.chars.push(' ');
                out.start_ms.push(ms(self.last_end_s));
                out.duration_ms.push(ms(start).saturating_sub(ms(self.last_end_s)));
            }
            let count = word.chars().count() as f64;
            let each = (end - start) / count;
            for (k, c) in word.chars().enumerate() {
                out.chars.push(c);
                out.start_ms.push(ms(start + each * k as f64));
                out.duration_ms.push(ms(each));
            }
            self.last_end_s = self.last_end_s.max(end);
            self.any = true;
        }
    }
}

fn ms(seconds: f64) -> u32 {
    (seconds * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(words: &[&str], start: &[f64], end: &[f64]) -> WordTimes {
        WordTimes { words: words.iter().map(|w| w.to_string()).collect(), start: start.to_vec(), end: end.to_vec() }
    }

    #[test]
    fn words_become_spaced_characters_on_one_clock() {
        let mut t = Timeline::default();
        let mut al = Alignment::default();
        t.push(&times(&["Hi", "you."], &[0.0, 0.15], &[0.1, 0.35]), &mut al);
        assert_eq!(al.chars.iter().collect::<String>(), "Hi you.");
        assert_eq!(al.start_ms, [0, 50, 100, 150, 200, 250, 300]);
        assert_eq!(al.duration_ms[2], 50, "the space spans the gap");

        // Absolute times continue; restarted times are shifted after the last word.
        t.push(&times(&["More"], &[0.5], &[0.7]), &mut al);
        assert_eq!(al.start_ms[al.start_ms.len() - 4], 500);
        t.push(&times(&["Again"], &[0.0], &[0.25]), &mut al);
        assert_eq!(al.start_ms[al.start_ms.len() - 5], 700);
        assert!(al.start_ms.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn ragged_or_bad_times_are_skipped() {
        let mut t = Timeline::default();
        let mut al = Alignment::default();
        t.push(&times(&["a", "b", "c"], &[0.0, f64::NAN], &[0.1, 0.2, 0.3]), &mut al);
        assert_eq!(al.chars, ['a']);
        t.push(&times(&["d"], &[-1.0], &[0.1]), &mut al);
        assert_eq!(al.chars, ['a']);
    }
}
