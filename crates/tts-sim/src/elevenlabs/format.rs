//! `output_format` values the simulator can produce.

/// Audio encoding of the `audio` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// s16le mono at this rate.
    Pcm(u32),
    /// G.711 µ-law at 8 kHz (`ulaw_8000`), what telephone gateways play.
    Ulaw8000,
    /// G.711 A-law at 8 kHz (`alaw_8000`).
    Alaw8000,
}

impl Format {
    pub(crate) const SUPPORTED: &'static str =
        "pcm_8000, pcm_16000, pcm_22050, pcm_24000, pcm_32000, pcm_44100, pcm_48000, ulaw_8000, alaw_8000";

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "ulaw_8000" => return Some(Self::Ulaw8000),
            "alaw_8000" => return Some(Self::Alaw8000),
            _ => {}
        }
        let rate: u32 = s.strip_prefix("pcm_")?.parse().ok()?;
        [8000, 16000, 22050, 24000, 32000, 44100, 48000].contains(&rate).then_some(Self::Pcm(rate))
    }

    pub(crate) fn sample_rate(self) -> u32 {
        match self {
            Self::Pcm(rate) => rate,
            Self::Ulaw8000 | Self::Alaw8000 => 8000,
        }
    }

    /// Encodes into `out` (cleared first) so one buffer serves a whole stream.
    pub(crate) fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            Self::Pcm(_) => {
                out.clear();
                out.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
            }
            Self::Ulaw8000 => media::g711::encode_ulaw_into(samples, out),
            Self::Alaw8000 => media::g711::encode_alaw_into(samples, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pcm_rates_and_g711_at_8000_only() {
        assert_eq!(Format::parse("pcm_16000"), Some(Format::Pcm(16000)));
        assert_eq!(Format::parse("ulaw_8000"), Some(Format::Ulaw8000));
        assert_eq!(Format::parse("alaw_8000"), Some(Format::Alaw8000));
        assert_eq!(Format::parse("pcm_11025"), None);
        assert_eq!(Format::parse("ulaw_16000"), None);
        assert_eq!(Format::parse("mp3_44100_128"), None);
        let mut out = Vec::new();
        Format::Pcm(8000).encode(&[1, -2], &mut out);
        assert_eq!(out, [1, 0, 0xfe, 0xff]);
        Format::Ulaw8000.encode(&[0, 32767], &mut out);
        assert_eq!(out, [0xff, 0x80], "one byte per sample, replacing what was there");
    }
}
