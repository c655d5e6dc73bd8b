//! G.711 µ-law (PCMU) and A-law (PCMA), bit-exact with the ITU-T G.191 reference tools.
//!
//! The arithmetic comes from `audio-codec-algorithms`: a hand-written µ-law encoder
//! disagrees with G.191 on 127 inputs, which shows up as mismatches against carrier
//! test vectors. Decoding goes through 256-entry tables built once, so a 160-byte frame is a
//! handful of cache-resident loads. The `_into` functions clear and refill a reused buffer.

use std::sync::LazyLock;

static ULAW_TABLE: LazyLock<[i16; 256]> =
    LazyLock::new(|| std::array::from_fn(|i| audio_codec_algorithms::decode_ulaw(i as u8)));
static ALAW_TABLE: LazyLock<[i16; 256]> =
    LazyLock::new(|| std::array::from_fn(|i| audio_codec_algorithms::decode_alaw(i as u8)));

/// One µ-law byte → linear PCM16.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[usize::from(code)]
}

/// The µ-law code of every 14-bit input, built once from the reference arithmetic: µ-law
/// reads only a sample's top 14 bits, so encoding is one load per sample instead of a segment
/// search (the TTS → carrier path encodes 8,000 samples a second per call).
static ULAW_ENCODE: LazyLock<[u8; 1 << 14]> =
    LazyLock::new(|| std::array::from_fn(|i| audio_codec_algorithms::encode_ulaw(((i as i32 - 8192) << 2) as i16)));

/// A sample's row in [`ULAW_ENCODE`]: its top 14 bits, offset to start at 0.
#[inline]
fn ulaw_row(sample: i16) -> usize {
    ((sample >> 2) + 8192) as usize
}

/// Linear PCM16 → one µ-law byte.
#[inline]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    ULAW_ENCODE[ulaw_row(sample)]
}

/// One A-law byte → linear PCM16.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[usize::from(code)]
}

/// Linear PCM16 → one A-law byte.
#[inline]
pub fn linear_to_alaw(sample: i16) -> u8 {
    audio_codec_algorithms::encode_alaw(sample)
}

/// µ-law payload → samples, replacing the contents of `out`.
pub fn decode_ulaw_into(codes: &[u8], out: &mut Vec<i16>) {
    decode_with(&ULAW_TABLE, codes, out);
}

/// Samples → µ-law payload, replacing the contents of `out`.
pub fn encode_ulaw_into(samples: &[i16], out: &mut Vec<u8>) {
    let table = &*ULAW_ENCODE;
    out.clear();
    out.extend(samples.iter().map(|&s| table[ulaw_row(s)]));
}

/// A-law payload → samples, replacing the contents of `out`.
pub fn decode_alaw_into(codes: &[u8], out: &mut Vec<i16>) {
    decode_with(&ALAW_TABLE, codes, out);
}

/// Samples → A-law payload, replacing the contents of `out`.
pub fn encode_alaw_into(samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.extend(samples.iter().map(|&s| linear_to_alaw(s)));
}

fn decode_with(table: &[i16; 256], codes: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(codes.iter().map(|&c| table[usize::from(c)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_table_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0x7E), -8);
        assert_eq!(ulaw_to_linear(0xEF), 132);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(32124), 0x80);
        assert_eq!(linear_to_ulaw(-32124), 0x00);
    }

    #[test]
    fn alaw_known_table_values() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn ulaw_encode_table_matches_the_reference_for_every_sample() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(linear_to_ulaw(x), audio_codec_algorithms::encode_ulaw(x), "x={x}");
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            // 0x7F is µ-law's "negative zero"; it decodes to 0, which encodes as 0xFF.
            let expect = if code == 0x7F { 0xFF } else { code };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(code)), expect, "µ-law {code:#04x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn round_trip_error_stays_within_half_a_step_for_all_i16() {
        // Both laws use 16 steps per octave, so a step is at most |x|/16 (plus the linear
        // segment near zero); reconstruction sits mid-step and the top clips at ±32124/32256.
        for x in i16::MIN..=i16::MAX {
            let bound = (i32::from(x).abs() / 32).max(16) + 8;
            let clip_u = i32::from(x).clamp(-32124, 32124);
            let clip_a = i32::from(x).clamp(-32256, 32256);
            let eu = (i32::from(ulaw_to_linear(linear_to_ulaw(x))) - clip_u).abs();
            let ea = (i32::from(alaw_to_linear(linear_to_alaw(x))) - clip_a).abs();
            assert!(eu <= bound, "µ-law x={x} err={eu}");
            assert!(ea <= bound, "A-law x={x} err={ea}");
        }
    }

    #[test]
    fn encode_is_monotonic_in_decoded_value() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for x in i16::MIN..=i16::MAX {
            let u = ulaw_to_linear(linear_to_ulaw(x));
            let a = alaw_to_linear(linear_to_alaw(x));
            assert!(u >= prev_u && a >= prev_a, "x={x}");
            prev_u = u;
            prev_a = a;
        }
    }

    #[test]
    fn buffer_versions_clear_and_match_scalar() {
        let samples: Vec<i16> = (0..160).map(|i| ((i as f32 * 0.2).sin() * 12000.0) as i16).collect();
        let mut bytes = vec![1u8; 999];
        let mut back = vec![1i16; 999];
        encode_ulaw_into(&samples, &mut bytes);
        assert_eq!(bytes.len(), 160);
        assert!(bytes.iter().zip(&samples).all(|(&b, &s)| b == linear_to_ulaw(s)));
        decode_ulaw_into(&bytes, &mut back);
        assert_eq!(back.len(), 160);
        assert!(back.iter().zip(&bytes).all(|(&s, &b)| s == ulaw_to_linear(b)));

        encode_alaw_into(&samples, &mut bytes);
        assert!(bytes.iter().zip(&samples).all(|(&b, &s)| b == linear_to_alaw(s)));
        decode_alaw_into(&bytes, &mut back);
        assert!(back.iter().zip(&bytes).all(|(&s, &b)| s == alaw_to_linear(b)));

        decode_alaw_into(&[], &mut back);
        assert!(back.is_empty());
    }
}
