//! Audio for real-time voice: frames, G.711/L16/Opus codecs, streaming resampling, VAD, the playout clock.
//!
//! Everything here works on 20 ms mono PCM16 frames and is built for the per-frame hot path:
//! callers pass reusable buffers, and nothing allocates per frame once warmed up.
//!
//! No networking and no provider knowledge: this crate is the bottom of the dependency graph.

mod frame;
pub mod g711;
pub mod l16;
pub mod opus_codec;
mod playout;
mod resample;
pub mod vad;
pub mod wav;

pub use frame::AudioFrame;
pub use playout::{Lead, Playout};
pub use resample::{ResampleError, Resampler};
pub use vad::{Vad, VadConfig, VadEvent};

/// Samples in a 20 ms frame at `sample_rate`.
pub const fn samples_per_20ms(sample_rate: u32) -> usize {
    (sample_rate / 50) as usize
}
