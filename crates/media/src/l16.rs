//! Linear PCM16 ⇄ bytes. Little-endian is what providers and browsers send; big-endian is
//! RTP's L16.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("PCM16 needs an even number of bytes, got {0}")]
pub struct OddLength(pub usize);

impl OddLength {
    pub fn code(&self) -> &'static str {
        "pcm16_odd_length"
    }
}

pub fn decode_le_into(src: &[u8], out: &mut Vec<i16>) -> Result<(), OddLength> {
    if !src.len().is_multiple_of(2) {
        return Err(OddLength(src.len()));
    }
    out.clear();
    out.extend(src.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])));
    Ok(())
}

pub fn encode_le_into(src: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.resize(src.len() * 2, 0);
    write_le(src, out);
}

/// Writes `src` as little-endian PCM16 into the first `2 * src.len()` bytes of `dst`, in one
/// pass the compiler vectorises (appending sample by sample checks capacity for each: it was
/// the caller reader's largest own cost per frame).
pub fn write_le(src: &[i16], dst: &mut [u8]) {
    write_with(src, dst, i16::to_le_bytes);
}

fn write_with(src: &[i16], dst: &mut [u8], to_bytes: impl Fn(i16) -> [u8; 2]) {
    for (d, &s) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&to_bytes(s));
    }
}

pub fn decode_be_into(src: &[u8], out: &mut Vec<i16>) -> Result<(), OddLength> {
    if !src.len().is_multiple_of(2) {
        return Err(OddLength(src.len()));
    }
    out.clear();
    out.extend(src.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]])));
    Ok(())
}

pub fn encode_be_into(src: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.resize(src.len() * 2, 0);
    write_with(src, out, i16::to_be_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_orders() {
        let pcm = vec![0i16, 1, -1, i16::MAX, i16::MIN, 0x1234];
        let mut b = Vec::new();
        let mut back = Vec::new();
        encode_le_into(&pcm, &mut b);
        assert_eq!(&b[10..], &[0x34, 0x12]);
        decode_le_into(&b, &mut back).unwrap();
        assert_eq!(back, pcm);
        encode_be_into(&pcm, &mut b);
        assert_eq!(&b[10..], &[0x12, 0x34]);
        decode_be_into(&b, &mut back).unwrap();
        assert_eq!(back, pcm);
    }

    #[test]
    fn odd_length_is_an_error() {
        let mut out = Vec::new();
        assert_eq!(decode_le_into(&[1, 2, 3], &mut out), Err(OddLength(3)));
        assert_eq!(decode_be_into(&[1], &mut out), Err(OddLength(1)));
        assert_eq!(OddLength(1).code(), "pcm16_odd_length");
    }
}
