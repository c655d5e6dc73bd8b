//! Deterministic speech-like audio: a voiced 150–250 Hz tone with harmonics and a
//! syllable-rate envelope, silent after punctuation. Good enough for VAD, level meters and
//! barge-in tests; identical input always gives identical samples.

use std::f64::consts::TAU;

/// Synthesizer state carried across characters so phase and level never jump (no clicks).
pub(crate) struct Voice {
    rate: f64,
    /// Next sample index, counted from the start of the stream.
    n: u64,
    phase: f64,
    amp: f64,
    /// One-pole smoothing coefficient (~5 ms) for level changes between characters.
    smooth: f64,
    prev: char,
}

impl Voice {
    pub(crate) fn new(sample_rate: u32) -> Self {
        let rate = f64::from(sample_rate.max(1));
        Self { rate, n: 0, phase: 0.0, amp: 0.0, smooth: 1.0 - (-1.0 / (0.005 * rate)).exp(), prev: ' ' }
    }

    /// Appends samples up to (not including) stream sample `end`, voicing `c`.
    pub(crate) fn render(&mut self, c: char, end: u64, out: &mut Vec<i16>) {
        let target = level(c, self.prev);
        self.prev = c;
        while self.n < end {
            let t = self.n as f64 / self.rate;
            let f0 = 200.0 + 50.0 * (TAU * 0.7 * t).sin();
            self.phase = (self.phase + TAU * f0 / self.rate) % TAU;
            let syllable = 0.6 + 0.4 * (TAU * 4.5 * t).sin();
            self.amp += (target - self.amp) * self.smooth;
            let p = self.phase;
            let wave = (p.sin() + 0.5 * (2.0 * p).sin() + 0.25 * (3.0 * p).sin() + 0.12 * (4.0 * p).sin()) / 1.87;
            out.push((wave * self.amp * syllable * 0.35 * f64::from(i16::MAX)) as i16);
            self.n += 1;
        }
    }
}

/// Letters speak, spaces between words dip, punctuation and the pause after it are silent.
fn level(c: char, prev: char) -> f64 {
    if c.is_alphanumeric() {
        1.0
    } else if c.is_whitespace() {
        if prev.is_ascii_punctuation() {
            0.0
        } else {
            0.35
        }
    } else if c.is_ascii_punctuation() {
        0.0
    } else {
        0.6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
    }

    #[test]
    fn letters_are_loud_punctuation_pauses_are_quiet_and_output_is_deterministic() {
        let render = || {
            let mut v = Voice::new(16000);
            let mut out = Vec::new();
            for (i, c) in "ab. c".chars().enumerate() {
                v.render(c, (i as u64 + 1) * 800, &mut out);
            }
            out
        };
        let out = render();
        assert_eq!(out.len(), 4000);
        assert_eq!(out, render());
        let letters = rms(&out[200..1600]);
        let pause = rms(&out[2600..3200]); // the space after '.'
        assert!(letters > 3000.0, "letters rms {letters}");
        assert!(pause < letters / 10.0, "pause rms {pause}");
    }
}
