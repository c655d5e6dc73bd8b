//! Streaming sample-rate conversion between telephony (8 kHz), STT/TTS (16/22.05/24 kHz)
//! and WebRTC (48 kHz) rates.
//!
//! Built on rubato's asynchronous sinc resampler with a 64-tap filter: 1–4 ms of delay and a
//! real anti-aliasing low-pass, where the FFT resampler costs 10 ms and polynomial
//! interpolation aliases when downsampling. Input is gathered into fixed chunks that divide a
//! 20 ms frame, so 20 ms frames pass straight through with no buffering delay; any other
//! length is accepted and the remainder waits for the next call. All buffers are allocated
//! in [`Resampler::new`].

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Async, FixedAsync, Resampler as _, SincInterpolationParameters, SincInterpolationType, WindowFunction};

const SINC_LEN: usize = 64;
const MIN_RATE: u32 = 1_000;
const MAX_RATE: u32 = 384_000;

/// Why a resampler could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResampleError {
    #[error("sample rate {0} Hz is outside 1–384 kHz")]
    UnsupportedRate(u32),
    #[error("resampler construction failed: {0}")]
    Construction(#[from] rubato::ResamplerConstructionError),
    #[error("resampling failed: {0}")]
    Process(#[from] rubato::ResampleError),
    #[error("resampler buffer does not match its chunk size")]
    BufferSize,
}

impl ResampleError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedRate(_) => "resample_unsupported_rate",
            Self::Construction(_) => "resample_construction",
            Self::Process(_) => "resample_process",
            Self::BufferSize => "resample_buffer_size",
        }
    }
}

/// One direction of one stream: keeps filter state across calls, so frames must be fed in
/// order. Rebuild (or use a second instance) for an unrelated stream.
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    /// `None` when the rates are equal: samples are copied through.
    inner: Option<Engine>,
}

struct Engine {
    rs: Async<f32>,
    /// Input gathered until a full chunk is available (capacity = chunk).
    pending: Vec<f32>,
    /// Scratch output for one chunk (length = rubato's maximum).
    scratch: Vec<f32>,
}

impl Resampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, ResampleError> {
        for rate in [from_hz, to_hz] {
            if !(MIN_RATE..=MAX_RATE).contains(&rate) {
                return Err(ResampleError::UnsupportedRate(rate));
            }
        }
        if from_hz == to_hz {
            return Ok(Self { from_hz, to_hz, inner: None });
        }
        let chunk = chunk_len(from_hz);
        let params = SincInterpolationParameters::new(SINC_LEN, WindowFunction::BlackmanHarris2)
            .interpolation(SincInterpolationType::Linear)
            .oversampling_factor(256);
        let ratio = f64::from(to_hz) / f64::from(from_hz);
        let rs = Async::<f32>::new_sinc(ratio, 1.0, &params, chunk, 1, FixedAsync::Input)?;
        let scratch = vec![0.0; rs.output_frames_max()];
        let pending = Vec::with_capacity(rs.input_frames_max());
        Ok(Self { from_hz, to_hz, inner: Some(Engine { rs, pending, scratch }) })
    }

    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Resample `input` (any length) and APPEND the result to `out`. Output length varies
    /// by a sample or so per call; over time it tracks `input × to/from`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) -> Result<(), ResampleError> {
        let Some(engine) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        let mut rest = input;
        while !rest.is_empty() {
            let chunk = engine.rs.input_frames_next().max(1);
            let need = chunk.saturating_sub(engine.pending.len());
            let (now, later) = rest.split_at(need.min(rest.len()));
            engine.pending.extend(now.iter().map(|&s| f32::from(s) / 32768.0));
            rest = later;
            if engine.pending.len() >= chunk {
                engine.run(out)?;
            }
        }
        Ok(())
    }

    /// Algorithmic delay of the filter, in milliseconds of output. Excludes any partial
    /// chunk waiting in the input buffer (none when fed whole 20 ms frames).
    pub fn delay_ms(&self) -> f64 {
        match &self.inner {
            None => 0.0,
            Some(e) => e.rs.output_delay() as f64 * 1000.0 / f64::from(self.to_hz),
        }
    }

    /// Drop filter state and buffered input, e.g. when a new utterance starts.
    pub fn reset(&mut self) {
        if let Some(e) = self.inner.as_mut() {
            e.rs.reset();
            e.pending.clear();
        }
    }
}

impl Engine {
    fn run(&mut self, out: &mut Vec<i16>) -> Result<(), ResampleError> {
        let frames_in = self.pending.len();
        let frames_out = self.scratch.len();
        let input = InterleavedSlice::new(&self.pending[..], 1, frames_in).map_err(|_| ResampleError::BufferSize)?;
        let mut output =
            InterleavedSlice::new_mut(&mut self.scratch[..], 1, frames_out).map_err(|_| ResampleError::BufferSize)?;
        let (_, produced) = self.rs.process_into_buffer(&input, &mut output, None)?;
        self.pending.clear();
        let produced = produced.min(self.scratch.len());
        out.extend(self.scratch[..produced].iter().map(|&s| to_i16(s)));
        Ok(())
    }
}

fn to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Largest proper divisor of a 20 ms frame (at most 10 ms), so whole frames never wait.
fn chunk_len(from_hz: u32) -> usize {
    let frame = (from_hz / 50).max(1) as usize;
    let smallest_factor = (2..=frame).find(|&p| frame.is_multiple_of(p)).unwrap_or(frame);
    if smallest_factor <= 8 {
        frame / smallest_factor
    } else {
        // A 20 ms frame with no small factor: a fixed 10 ms chunk is fine.
        (frame / 2).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(freq: f64, rate: u32, amp: f64, n: usize) -> Vec<i16> {
        (0..n).map(|i| (amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()).round() as i16).collect()
    }

    /// Amplitude of the `freq` component (single-bin DFT over whole periods-ish).
    fn tone_amplitude(s: &[i16], freq: f64, rate: u32) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &x) in s.iter().enumerate() {
            let ph = 2.0 * PI * freq * i as f64 / f64::from(rate);
            re += f64::from(x) * ph.cos();
            im += f64::from(x) * ph.sin();
        }
        2.0 * (re * re + im * im).sqrt() / s.len() as f64
    }

    fn zero_crossings(s: &[i16]) -> usize {
        s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    /// Feed `input` in 20 ms frames and collect everything.
    fn run(rs: &mut Resampler, input: &[i16], from: u32) -> Vec<i16> {
        let mut out = Vec::new();
        for frame in input.chunks(crate::samples_per_20ms(from)) {
            rs.process(frame, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn upsample_8k_to_16k_keeps_pitch_level_and_length() {
        let mut rs = Resampler::new(8000, 16_000).unwrap();
        let input = sine(440.0, 8000, 10_000.0, 8000 * 2);
        let mut out = Vec::new();
        let mut fed = 0usize;
        for frame in input.chunks(160) {
            rs.process(frame, &mut out).unwrap();
            fed += frame.len();
            let diff = out.len() as i64 - (fed * 2) as i64;
            assert!(diff.abs() <= 320, "after {fed} in, {} out", out.len());
        }
        let tail = &out[3200..]; // skip 100 ms of filter warm-up
        let secs = tail.len() as f64 / 16_000.0;
        let hz = zero_crossings(tail) as f64 / 2.0 / secs;
        assert!((hz - 440.0).abs() < 440.0 * 0.01, "measured {hz} Hz");
        let db = 20.0 * (tone_amplitude(tail, 440.0, 16_000) / 10_000.0).log10();
        assert!(db.abs() < 1.0, "level {db:.2} dB");
    }

    #[test]
    fn downsample_24k_to_8k_passes_1k_and_blocks_6k() {
        let level = |freq: f64| {
            let mut rs = Resampler::new(24_000, 8000).unwrap();
            let out = run(&mut rs, &sine(freq, 24_000, 10_000.0, 24_000), 24_000);
            let tail = &out[800..];
            // Energy of whatever came out: an aliased 6 kHz would show up at 2 kHz.
            let rms = (tail.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
            // Fully blocked rounds to silence; floor at half an LSB to keep the dB finite.
            20.0 * (rms.max(0.5) * 2f64.sqrt() / 10_000.0).log10()
        };
        let pass = level(1000.0);
        let stop = level(6000.0);
        assert!(pass.abs() < 1.0, "1 kHz at {pass:.2} dB");
        assert!(stop < -20.0, "6 kHz only down {stop:.2} dB");
    }

    #[test]
    fn measured_delay_matches_reported_delay() {
        for (from, to) in [(8000, 16_000), (24_000, 8000), (16_000, 48_000), (48_000, 16_000), (22_050, 16_000)] {
            let mut rs = Resampler::new(from, to).unwrap();
            let at = from as usize / 10; // impulse 100 ms in
            let mut input = vec![0i16; from as usize / 2];
            input[at] = 20_000;
            let out = run(&mut rs, &input, from);
            let peak = out.iter().enumerate().max_by_key(|(_, v)| v.unsigned_abs()).unwrap().0;
            let measured = (peak as f64 - at as f64 * f64::from(to) / f64::from(from)) * 1000.0 / f64::from(to);
            assert!(measured <= 5.0, "{from}->{to}: {measured:.2} ms");
            assert!((measured - rs.delay_ms()).abs() <= 1.0, "{from}->{to}: {measured:.2} vs {:.2}", rs.delay_ms());
        }
    }

    #[test]
    fn all_common_rates_in_any_direction_track_length() {
        let rates = [8000, 16_000, 22_050, 24_000, 44_100, 48_000];
        for from in rates {
            for to in rates {
                let mut rs = Resampler::new(from, to).unwrap();
                let input = sine(300.0, from, 5000.0, from as usize); // 1 s
                let out = run(&mut rs, &input, from);
                let expect = to as i64;
                let frame_out = i64::from(to / 50);
                assert!((out.len() as i64 - expect).abs() <= frame_out, "{from}->{to}: {}", out.len());
                assert!(rs.delay_ms() <= 5.0);
            }
        }
    }

    #[test]
    fn odd_input_sizes_give_the_same_output_as_whole_frames() {
        let input = sine(500.0, 22_050, 8000.0, 22_050);
        let mut whole = Resampler::new(22_050, 16_000).unwrap();
        let a = run(&mut whole, &input, 22_050);
        let mut ragged = Resampler::new(22_050, 16_000).unwrap();
        let mut b = Vec::new();
        for piece in input.chunks(37) {
            ragged.process(piece, &mut b).unwrap();
        }
        let n = a.len().min(b.len());
        assert!(n > 15_000);
        assert_eq!(a[..n], b[..n]);
    }

    #[test]
    fn equal_rates_copy_through_and_append() {
        let mut rs = Resampler::new(16_000, 16_000).unwrap();
        let mut out = vec![9];
        rs.process(&[1, 2, 3], &mut out).unwrap();
        assert_eq!(out, [9, 1, 2, 3]);
        assert_eq!(rs.delay_ms(), 0.0);
    }

    #[test]
    fn output_is_appended_and_buffers_do_not_grow() {
        let mut rs = Resampler::new(8000, 16_000).unwrap();
        let mut out = Vec::with_capacity(4096);
        let frame = sine(440.0, 8000, 8000.0, 160);
        rs.process(&frame, &mut out).unwrap();
        let engine = rs.inner.as_ref().unwrap();
        let caps = (engine.pending.capacity(), engine.scratch.capacity());
        for _ in 0..100 {
            out.clear();
            out.push(7);
            rs.process(&frame, &mut out).unwrap();
            assert_eq!(out[0], 7);
            assert!((318..=322).contains(&(out.len() - 1)), "{}", out.len());
        }
        let engine = rs.inner.as_ref().unwrap();
        assert_eq!((engine.pending.capacity(), engine.scratch.capacity()), caps);
    }

    #[test]
    fn bad_rates_are_typed_errors() {
        assert_eq!(Resampler::new(0, 8000).err().map(|e| e.code()), Some("resample_unsupported_rate"));
        assert!(Resampler::new(8000, 1_000_000).is_err());
    }

    #[test]
    fn chunks_divide_a_20ms_frame() {
        assert_eq!(chunk_len(8000), 80);
        assert_eq!(chunk_len(22_050), 147);
        assert_eq!(chunk_len(44_100), 441);
        assert_eq!(chunk_len(48_000), 480);
    }
}
