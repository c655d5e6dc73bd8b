//! The listening side every STT simulator shares: linear16 audio in (counted, decoded into a
//! reused buffer, fed to the recognizer), recognizer output out, and the injected fault.
//! Each provider module only renders that output in its own wire format.

use crate::recognizer::{Out, RecOpts, Recognizer};
use crate::SimConfig;
use simkit::Stats;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One stream's recognizer and audio accounting.
pub(crate) struct Listener {
    rec: Recognizer,
    /// Recognizer output not rendered yet (reused).
    out: Vec<Out>,
    pcm: Pcm,
    bytes: u64,
    bytes_per_s: u64,
    fail_after_ms: Option<u64>,
    final_delay: Duration,
    stats: Arc<Stats>,
}

impl Listener {
    pub(crate) fn new(opts: RecOpts, cfg: &SimConfig, stats: Arc<Stats>) -> Self {
        Self {
            bytes_per_s: u64::from(opts.sample_rate) * 2,
            rec: Recognizer::new(opts, cfg.catalog.clone()),
            out: Vec::new(),
            pcm: Pcm::default(),
            bytes: 0,
            fail_after_ms: cfg.fail_after_audio_ms,
            final_delay: cfg.final_delay,
            stats,
        }
    }

    /// Count, decode and recognize one chunk. True once the injected fault is due.
    pub(crate) fn audio(&mut self, bytes: &[u8]) -> bool {
        self.bytes += bytes.len() as u64;
        self.stats.received(bytes.len());
        self.rec.push(self.pcm.decode(bytes), &mut self.out);
        self.fail_after_ms.is_some_and(|limit| self.audio_ms() >= limit)
    }

    /// Flush speech in progress into a final (a client's finalize).
    pub(crate) fn finalize(&mut self) {
        self.rec.finalize(&mut self.out);
    }

    /// End of audio: flush everything pending.
    pub(crate) fn flush(&mut self) {
        self.rec.flush(&mut self.out);
    }

    /// Audio received so far, in milliseconds (rounded down).
    pub(crate) fn audio_ms(&self) -> u64 {
        self.bytes * 1000 / self.bytes_per_s.max(1)
    }

    /// Milliseconds of audio in a chunk of `len` bytes.
    pub(crate) fn ms_of(&self, len: usize) -> u64 {
        len as u64 * 1000 / self.bytes_per_s.max(1)
    }

    /// Audio received so far, in seconds.
    pub(crate) fn audio_s(&self) -> f64 {
        self.bytes as f64 / self.bytes_per_s.max(1) as f64
    }

    /// Billed seconds when the provider bills `pct` percent of the audio received.
    pub(crate) fn billed_s(&self, pct: u32) -> f64 {
        (self.bytes * u64::from(pct) / 100) as f64 / self.bytes_per_s.max(1) as f64
    }

    /// Recognizer output with when each goes out: endpointed finals after the provider's
    /// delay (at once when `flush`ing), the rest now.
    pub(crate) fn results(&mut self, flush: bool) -> impl Iterator<Item = (Instant, Out)> + '_ {
        let now = Instant::now();
        let delay = if flush { Duration::ZERO } else { self.final_delay };
        self.out.drain(..).map(move |o| match o {
            Out::Final { delay: true, .. } => (now + delay, o),
            o => (now, o),
        })
    }
}

/// Little-endian linear16 decoding into a reused buffer, carrying an odd byte across frames.
#[derive(Default)]
pub(crate) struct Pcm {
    odd: Option<u8>,
    pcm: Vec<i16>,
}

impl Pcm {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> &[i16] {
        self.pcm.clear();
        let mut rest = bytes;
        if let (Some(lo), Some((&hi, tail))) = (self.odd, bytes.split_first()) {
            self.pcm.push(i16::from_le_bytes([lo, hi]));
            self.odd = None;
            rest = tail;
        }
        let mut pairs = rest.chunks_exact(2);
        self.pcm.extend((&mut pairs).map(|p| match p {
            [lo, hi] => i16::from_le_bytes([*lo, *hi]),
            _ => 0,
        }));
        if let [b] = pairs.remainder() {
            self.odd = Some(*b);
        }
        &self.pcm
    }
}

/// Round to the millisecond, as providers report times.
pub(crate) fn ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Whole milliseconds of a time in seconds.
pub(crate) fn to_ms(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1000.0).round() as u64
    } else {
        0
    }
}

/// `2024-08-29T22:37:55.202Z`: the timestamp USP headers carry, written by `usp`.
pub(crate) fn rfc3339_now() -> String {
    let mut out = String::with_capacity(24);
    usp::write_timestamp(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_decoding_carries_odd_bytes() {
        let mut d = Pcm::default();
        assert_eq!(d.decode(&[0x01, 0x00, 0xff]), &[1i16]);
        assert_eq!(d.decode(&[0xff, 0x02, 0x00]), &[-1i16, 2]);
        assert_eq!((to_ms(1.2344), to_ms(-1.0), ms(0.12345)), (1234, 0, 0.123));
    }

    #[test]
    fn created_looks_like_rfc3339() {
        let s = rfc3339_now();
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z') && &s[10..11] == "T");
    }
}
