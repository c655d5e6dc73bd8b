//! Opus for WebRTC-style legs: thin wrappers over libopus (`opus` crate) that keep
//! reusable output buffers and turn every libopus failure into a [`CodecError`].
//!
//! Mono only, VOIP application (speech-tuned, with in-band FEC available). Both sides are
//! `Send`, so they can live inside a session task.

use opus::{Application, Channels, Decoder, Encoder};

/// libopus's recommended upper bound for one encoded packet.
const MAX_PACKET_BYTES: usize = 4000;
/// Longest duration an Opus packet can carry (RFC 6716 §3.2.5).
const MAX_PACKET_MS: u32 = 120;

/// Why an Opus call failed; garbage from the network lands here, never in a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("empty Opus packet; report losses with decode_lost")]
    EmptyPacket,
    #[error("Opus packet of {samples} samples exceeds 120 ms")]
    PacketTooLong { samples: usize },
}

impl CodecError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Opus(e) => match e.code() {
                opus::ErrorCode::InvalidPacket => "opus_invalid_packet",
                opus::ErrorCode::BadArg => "opus_bad_argument",
                _ => "opus_failure",
            },
            Self::EmptyPacket => "opus_empty_packet",
            Self::PacketTooLong { .. } => "opus_packet_too_long",
        }
    }
}

/// Mono VOIP encoder at one of Opus's native rates (8/12/16/24/48 kHz).
pub struct OpusEncoder {
    inner: Encoder,
}

impl OpusEncoder {
    pub fn new(sample_rate: u32) -> Result<Self, CodecError> {
        Ok(Self { inner: Encoder::new(sample_rate, Channels::Mono, Application::Voip)? })
    }

    /// Encode one frame (normally 20 ms; any Opus frame size is accepted) into `out`,
    /// replacing its contents. Returns the packet length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        out.clear();
        out.resize(MAX_PACKET_BYTES, 0);
        let result = self.inner.encode(pcm, out);
        let n = match result {
            Ok(n) => n.min(MAX_PACKET_BYTES),
            Err(e) => {
                out.clear();
                return Err(e.into());
            }
        };
        out.truncate(n);
        Ok(n)
    }
}

/// Mono decoder with packet-loss concealment.
pub struct OpusDecoder {
    inner: Decoder,
    sample_rate: u32,
    max_samples: usize,
}

impl OpusDecoder {
    pub fn new(sample_rate: u32) -> Result<Self, CodecError> {
        let inner = Decoder::new(sample_rate, Channels::Mono)?;
        let max_samples = (sample_rate / 1000 * MAX_PACKET_MS) as usize;
        Ok(Self { inner, sample_rate, max_samples })
    }

    /// Decode one packet into `out`, replacing its contents. Returns the sample count.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        out.clear();
        if packet.is_empty() {
            return Err(CodecError::EmptyPacket);
        }
        let samples = self.inner.get_nb_samples(packet)?;
        if samples > self.max_samples {
            return Err(CodecError::PacketTooLong { samples });
        }
        self.decode_raw(packet, samples, out)
    }

    /// Conceal one missing packet (PLC), sized like the last packet (20 ms before any).
    pub fn decode_lost(&mut self, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        out.clear();
        let last = self.inner.get_last_packet_duration()? as usize;
        let samples = if last == 0 { (self.sample_rate / 50) as usize } else { last };
        self.decode_raw(&[], samples.min(self.max_samples), out)
    }

    fn decode_raw(&mut self, packet: &[u8], samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        out.resize(samples, 0);
        match self.inner.decode(packet, out, false) {
            Ok(n) => {
                out.truncate(n);
                Ok(out.len())
            }
            Err(e) => {
                out.clear();
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, amp: f64, n: usize) -> Vec<i16> {
        (0..n).map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as i16).collect()
    }

    fn zero_crossings(s: &[i16]) -> usize {
        s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    #[test]
    fn sine_keeps_frequency_and_energy_through_opus() {
        let input = sine(440.0, 48_000, 8000.0, 960 * 50);
        let mut enc = OpusEncoder::new(48_000).unwrap();
        let mut dec = OpusDecoder::new(48_000).unwrap();
        let (mut packet, mut pcm, mut decoded) = (Vec::new(), Vec::new(), Vec::new());
        for frame in input.chunks(960) {
            let n = enc.encode(frame, &mut packet).unwrap();
            assert!(n > 0 && n == packet.len() && n < 400, "packet {n} bytes");
            assert_eq!(dec.decode(&packet, &mut pcm).unwrap(), 960);
            decoded.extend_from_slice(&pcm);
        }
        // Skip the first 200 ms (encoder lookahead and rate-control warm-up).
        let tail = &decoded[9600..];
        let expected = 2.0 * 440.0 * tail.len() as f64 / 48_000.0;
        let got = zero_crossings(tail) as f64;
        assert!((got - expected).abs() / expected < 0.03, "crossings {got} vs {expected}");
        let db = 20.0 * (rms(tail) / rms(&input[9600..])).log10();
        assert!(db.abs() < 2.0, "level change {db:.2} dB");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut dec = OpusDecoder::new(48_000).unwrap();
        let mut out = vec![1i16; 10];
        // Code-3 packet declaring zero frames; 0xFF… claims far more than 120 ms.
        for bad in [&[0x03u8, 0x00][..], &[0xFF; 8][..], &[0x0B][..]] {
            let err = dec.decode(bad, &mut out).unwrap_err();
            assert!(err.code().starts_with("opus_"), "{err}");
            assert!(out.is_empty());
        }
        assert!(matches!(dec.decode(&[], &mut out), Err(CodecError::EmptyPacket)));
        // Arbitrary bytes may or may not parse as Opus, but must never panic or overrun.
        let mut x: u32 = 0x1234_5678;
        for len in 1..300 {
            let pkt: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if let Ok(n) = dec.decode(&pkt, &mut out) {
                assert!(n <= 5760 && n == out.len());
            }
        }
    }

    #[test]
    fn lost_packets_are_concealed_at_the_last_duration() {
        let mut enc = OpusEncoder::new(16_000).unwrap();
        let mut dec = OpusDecoder::new(16_000).unwrap();
        let mut out = Vec::new();
        assert_eq!(dec.decode_lost(&mut out).unwrap(), 320);
        let (mut packet, input) = (Vec::new(), sine(300.0, 16_000, 6000.0, 320 * 10));
        for frame in input.chunks(320) {
            enc.encode(frame, &mut packet).unwrap();
            dec.decode(&packet, &mut out).unwrap();
        }
        assert_eq!(dec.decode_lost(&mut out).unwrap(), 320);
        assert_eq!(out.len(), 320);
        assert!(rms(&out) > 100.0, "PLC should continue the tone, not emit silence");
    }

    #[test]
    fn bad_rate_and_bad_frame_size_are_errors() {
        assert_eq!(OpusEncoder::new(44_100).err().map(|e| e.code()), Some("opus_bad_argument"));
        assert!(OpusDecoder::new(11_025).is_err());
        let mut enc = OpusEncoder::new(48_000).unwrap();
        let mut out = Vec::new();
        assert!(enc.encode(&[0; 100], &mut out).is_err());
        assert!(out.is_empty());
    }
}
