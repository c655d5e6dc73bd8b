//! Local voice activity detection on 20 ms frames.
//!
//! Energy with an adaptive noise floor and hysteresis: cheap (one pass over the frame, no
//! allocation), deterministic, and good enough for barge-in and end-of-turn on telephone audio.
//! Speech starts after `start_frames` loud frames in a row and ends after `hangover_frames`
//! quiet ones, so single clicks and short pauses between words do not flip it.

/// Tuning for [`Vad`]. The defaults suit 20 ms frames of telephone speech.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// A frame quieter than this (dBFS) is never speech.
    pub min_speech_dbfs: f32,
    /// A frame must be this many dB above the tracked noise floor to count as speech.
    pub above_floor_db: f32,
    /// Loud frames in a row before speech starts (3 × 20 ms = 60 ms).
    pub start_frames: u32,
    /// Quiet frames in a row before speech ends (15 × 20 ms = 300 ms).
    pub hangover_frames: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self { min_speech_dbfs: -45.0, above_floor_db: 12.0, start_frames: 3, hangover_frames: 15 }
    }
}

/// A change of state reported by [`Vad::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    None,
    /// Speech began; it started `start_frames` frames ago.
    SpeechStart,
    /// Speech ended; the last voiced frame was `hangover_frames` frames ago.
    SpeechEnd,
}

/// Per-stream VAD state. One per audio direction; `push` every frame in order.
#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    noise_floor_dbfs: f32,
    speaking: bool,
    loud_run: u32,
    quiet_run: u32,
    last_dbfs: f32,
}

impl Vad {
    pub fn new(cfg: VadConfig) -> Self {
        Self { cfg, noise_floor_dbfs: -70.0, speaking: false, loud_run: 0, quiet_run: 0, last_dbfs: f32::NEG_INFINITY }
    }

    pub fn config(&self) -> &VadConfig {
        &self.cfg
    }

    /// Feed one frame (any length, normally 20 ms) and learn whether the state changed.
    pub fn push(&mut self, frame: &[i16]) -> VadEvent {
        let db = frame_dbfs(frame);
        self.last_dbfs = db;
        let loud = db >= self.cfg.min_speech_dbfs && db >= self.noise_floor_dbfs + self.cfg.above_floor_db;
        // Track the floor quickly downwards and slowly upwards. It also creeps up during
        // "speech", so a steady noise (fan, line hum) stops counting as speech after ~2 s,
        // while the pauses between words pull it back down fast.
        let level = if db.is_finite() { db } else { -90.0 };
        let rate = if level < self.noise_floor_dbfs {
            0.3
        } else if loud {
            0.01
        } else {
            0.02
        };
        self.noise_floor_dbfs += (level - self.noise_floor_dbfs) * rate;
        if loud {
            self.loud_run = self.loud_run.saturating_add(1);
            self.quiet_run = 0;
            if !self.speaking && self.loud_run >= self.cfg.start_frames {
                self.speaking = true;
                return VadEvent::SpeechStart;
            }
        } else {
            self.quiet_run = self.quiet_run.saturating_add(1);
            self.loud_run = 0;
            if self.speaking && self.quiet_run >= self.cfg.hangover_frames {
                self.speaking = false;
                return VadEvent::SpeechEnd;
            }
        }
        VadEvent::None
    }

    /// Loud frames in a row up to the last one pushed (1 on the first loud frame of a run).
    pub fn loud_run(&self) -> u32 {
        self.loud_run
    }

    /// Quiet frames in a row up to the last one pushed (0 after a loud frame).
    pub fn quiet_run(&self) -> u32 {
        self.quiet_run
    }

    /// Whether the stream is inside a speech segment (including the hangover).
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Level of the last frame pushed, in dBFS.
    pub fn last_dbfs(&self) -> f32 {
        self.last_dbfs
    }
}

/// RMS level of a frame in dBFS (full scale = 32768). Silence gives `-inf`.
pub fn frame_dbfs(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return f32::NEG_INFINITY;
    }
    let sum: i64 = frame.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
    let mean = sum as f64 / frame.len() as f64;
    if mean <= 0.0 {
        return f32::NEG_INFINITY;
    }
    (10.0 * (mean / (32768.0 * 32768.0)).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amp: f32, n: usize) -> Vec<i16> {
        (0..n).map(|i| ((i as f32 * 0.3).sin() * amp) as i16).collect()
    }

    #[test]
    fn speech_needs_three_loud_frames_and_ends_after_hangover() {
        let mut vad = Vad::new(VadConfig::default());
        let silence = vec![0i16; 160];
        let speech = tone(8000.0, 160);
        for _ in 0..10 {
            assert_eq!(vad.push(&silence), VadEvent::None);
        }
        assert_eq!(vad.push(&speech), VadEvent::None);
        assert_eq!(vad.push(&speech), VadEvent::None);
        assert_eq!(vad.push(&speech), VadEvent::SpeechStart);
        assert!(vad.is_speaking());
        for _ in 0..14 {
            assert_eq!(vad.push(&silence), VadEvent::None);
        }
        assert_eq!(vad.push(&silence), VadEvent::SpeechEnd);
        assert!(!vad.is_speaking());
    }

    #[test]
    fn a_click_is_not_speech() {
        let mut vad = Vad::new(VadConfig::default());
        let silence = vec![0i16; 160];
        for _ in 0..5 {
            vad.push(&silence);
        }
        assert_eq!(vad.push(&tone(20000.0, 160)), VadEvent::None);
        assert_eq!(vad.push(&silence), VadEvent::None);
        assert!(!vad.is_speaking());
    }

    #[test]
    fn steady_noise_raises_the_floor() {
        let mut vad = Vad::new(VadConfig::default());
        let noise = tone(400.0, 160); // about -38 dBFS, above min_speech_dbfs
        let mut started = 0;
        for _ in 0..200 {
            if vad.push(&noise) == VadEvent::SpeechStart {
                started += 1;
            }
        }
        // It may start once before the floor catches up, but it must settle to silence.
        assert!(started <= 1);
        for _ in 0..20 {
            vad.push(&noise);
        }
        assert!(!vad.is_speaking());
    }

    #[test]
    fn dbfs_of_full_scale_square_is_zero() {
        let f = [32767i16, -32768].repeat(80);
        assert!(frame_dbfs(&f).abs() < 0.01);
        assert_eq!(frame_dbfs(&[0; 160]), f32::NEG_INFINITY);
    }
}
