/// A block of mono PCM16 audio with its place in the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AudioFrame {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
    /// Milliseconds since the start of the stream.
    pub timestamp_ms: u64,
}

impl AudioFrame {
    pub fn new(samples: Vec<i16>, sample_rate: u32, timestamp_ms: u64) -> Self {
        Self { samples, sample_rate, timestamp_ms }
    }

    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / u64::from(self.sample_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_of_common_frames() {
        assert_eq!(AudioFrame::new(vec![0; 160], 8000, 0).duration_ms(), 20);
        assert_eq!(AudioFrame::new(vec![0; 441], 22_050, 0).duration_ms(), 20);
        assert_eq!(AudioFrame::new(vec![0; 960], 48_000, 0).duration_ms(), 20);
        assert_eq!(AudioFrame::new(vec![0; 10], 0, 5).duration_ms(), 0);
    }
}
