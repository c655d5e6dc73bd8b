//! Synthetic "speech" for tests: tone bursts whose loudness rhythm stands in for syllables, a
//! catalog directory built from them, and a crude telephone path (8 kHz µ-law) to replay through.
//! Public (hidden from the docs) so the adapter and conformance tests share it; test support
//! only, so it panics on I/O errors.

use std::path::{Path, PathBuf};

pub const RATE: u32 = 16000;
pub const TEXT_A: &str = "Hello. What are your opening hours?";
pub const TEXT_B: &str = "I would like to book a table for two people tonight.";

/// Tone bursts `(start_s, end_s, amplitude)` inside `total_s` seconds at [`RATE`].
pub fn bursts(spec: &[(f64, f64, f32)], total_s: f64) -> Vec<i16> {
    let n = (total_s * f64::from(RATE)).round() as usize;
    let ramp = RATE as usize / 200; // 5 ms, no clicks
    let mut out = vec![0i16; n];
    for &(start, end, amp) in spec {
        let (a, b) = ((start * f64::from(RATE)) as usize, (end * f64::from(RATE)) as usize);
        for (i, o) in out.iter_mut().enumerate().take(b.min(n)).skip(a) {
            let t = i as f32 / RATE as f32;
            let edge = ((i - a).min(b - 1 - i) as f32 / ramp as f32).min(1.0);
            let s = (t * 300.0 * std::f32::consts::TAU).sin() * 0.6 + (t * 1100.0 * std::f32::consts::TAU).sin() * 0.4;
            *o = (s * amp * edge) as i16;
        }
    }
    out
}

/// 1.2 s: loud, soft, long loud.
pub fn utterance_a() -> Vec<i16> {
    bursts(&[(0.0, 0.26, 9000.0), (0.36, 0.6, 3000.0), (0.7, 1.2, 12000.0)], 1.2)
}

/// 2.0 s: five syllables of alternating strength.
pub fn utterance_b() -> Vec<i16> {
    bursts(&[(0.0, 0.3, 4000.0), (0.4, 0.6, 14000.0), (0.7, 1.1, 5000.0), (1.2, 1.4, 14000.0), (1.5, 2.0, 6000.0)], 2.0)
}

/// 1.4 s with A's duration range but the opposite rhythm: soft, short loud, soft.
pub fn unknown() -> Vec<i16> {
    bursts(&[(0.0, 0.6, 3000.0), (0.7, 0.9, 12000.0), (1.0, 1.4, 3000.0)], 1.4)
}

pub fn silence(s: f64) -> Vec<i16> {
    vec![0; (s * f64::from(RATE)).round() as usize]
}

pub fn to_bytes(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("stt-catalog-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn write_wav(path: &Path, pcm: &[i16], rate: u32) {
    media::wav::write_wav(path, pcm, rate).unwrap();
}

/// `call.wav` = 0.5 s silence, A (0.5–1.7 s), 1.5 s silence, B (3.2–5.2 s), 1 s silence; plus
/// its sidecar (with extra fields the catalog must ignore) and a stray WAV without a sidecar.
pub fn catalog_dir() -> TempDir {
    let dir = TempDir::new();
    let mut pcm = silence(0.5);
    pcm.extend(utterance_a());
    pcm.extend(silence(1.5));
    pcm.extend(utterance_b());
    pcm.extend(silence(1.0));
    write_wav(&dir.path().join("call.wav"), &pcm, RATE);
    let sidecar = serde_json::json!({
        "voice": "en-us",
        "utterances": [
            {"start_s": 0.45, "end_s": 1.75, "text": TEXT_A, "speaker": "caller"},
            {"start_s": 3.1, "end_s": 5.3, "text": TEXT_B, "speaker": "caller"},
        ]
    });
    std::fs::write(dir.path().join("call.json"), sidecar.to_string()).unwrap();
    write_wav(&dir.path().join("stray.wav"), &utterance_b(), RATE);
    dir
}

/// 16 kHz → 8 kHz (pair average) → µ-law → back → 16 kHz (linear interpolation).
pub fn telephone(pcm: &[i16]) -> Vec<i16> {
    let narrow: Vec<i16> = pcm
        .chunks(2)
        .map(|p| ulaw_decode(ulaw_encode((p.iter().map(|&s| i32::from(s)).sum::<i32>() / p.len() as i32) as i16)))
        .collect();
    let mut out = Vec::with_capacity(narrow.len() * 2);
    for (i, &s) in narrow.iter().enumerate() {
        let next = narrow.get(i + 1).copied().unwrap_or(s);
        out.push(s);
        out.push(((i32::from(s) + i32::from(next)) / 2) as i16);
    }
    out
}

fn ulaw_encode(s: i16) -> u8 {
    let mut x = i32::from(s);
    let sign = if x < 0 {
        x = -x;
        0x80u8
    } else {
        0
    };
    let x = (x + 0x84).min(0x7FFF);
    let exp = (31 - (x >> 7).leading_zeros() as i32).min(7);
    let mantissa = (x >> (exp + 3)) & 0x0F;
    !(sign | ((exp as u8) << 4) | mantissa as u8)
}

fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let exp = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0F);
    let x = (((mantissa << 3) + 0x84) << exp) - 0x84;
    (if u & 0x80 != 0 { -x } else { x }) as i16
}

#[cfg(test)]
#[test]
fn ulaw_round_trip_is_close() {
    for s in [0i16, 100, -100, 1000, -5000, 20000, -32000] {
        let back = ulaw_decode(ulaw_encode(s));
        assert!((i32::from(back) - i32::from(s)).abs() <= i32::from(s).abs() / 16 + 8, "{s} -> {back}");
    }
}
