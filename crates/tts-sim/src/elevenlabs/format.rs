//! `output_format` values the simulator can produce.

/// Audio encoding of the `audio` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// s16le mono at this rate.
    Pcm(u32),
}

impl Format {
    pub(crate) const SUPPORTED: &'static str =
        "pcm_8000, pcm_16000, pcm_22050, pcm_24000, pcm_32000, pcm_44100, pcm_48000";

    pub(crate) fn parse(s: &str) -> Option<Self> {
        let rate: u32 = s.strip_prefix("pcm_")?.parse().ok()?;
        [8000, 16000, 22050, 24000, 32000, 44100, 48000].contains(&rate).then_some(Self::Pcm(rate))
    }

    pub(crate) fn sample_rate(self) -> u32 {
        match self {
            Self::Pcm(rate) => rate,
        }
    }

    /// Encodes into `out` (cleared first) so one buffer serves a whole stream.
    pub(crate) fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Self::Pcm(_) => out.extend(samples.iter().flat_map(|s| s.to_le_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pcm_rates_only() {
        assert_eq!(Format::parse("pcm_16000"), Some(Format::Pcm(16000)));
        assert_eq!(Format::parse("pcm_11025"), None);
        assert_eq!(Format::parse("mp3_44100_128"), None);
        let mut out = Vec::new();
        Format::Pcm(8000).encode(&[1, -2], &mut out);
        assert_eq!(out, [1, 0, 0xfe, 0xff]);
    }
}
