//! VAD segmentation into speech segments with their loudness envelopes. The catalog and the live
//! simulator run exactly this code, so a recording and its replay segment the same way.

use super::fingerprint::SILENCE_DB;
use media::{Vad, VadConfig, VadEvent};

/// Cuts arbitrary-length sample runs into fixed frames, keeping the remainder for next time.
#[derive(Debug)]
pub(crate) struct Framer {
    len: usize,
    carry: Vec<i16>,
}

impl Framer {
    pub(crate) fn new(frame_len: usize) -> Self {
        let len = frame_len.max(1);
        Self { len, carry: Vec::with_capacity(len) }
    }

    /// Calls `f` once per complete frame, in order.
    pub(crate) fn feed(&mut self, mut samples: &[i16], mut f: impl FnMut(&[i16])) {
        if !self.carry.is_empty() {
            let take = (self.len - self.carry.len()).min(samples.len());
            let (head, rest) = samples.split_at(take);
            self.carry.extend_from_slice(head);
            samples = rest;
            if self.carry.len() < self.len {
                return;
            }
            f(&self.carry);
            self.carry.clear();
        }
        let mut chunks = samples.chunks_exact(self.len);
        for frame in &mut chunks {
            f(frame);
        }
        self.carry.extend_from_slice(chunks.remainder());
    }
}

/// What one frame did to the segmentation. Frame indices count from the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegEvent {
    None,
    /// Speech began at frame `start` (the first of the loud run that triggered the VAD).
    Started {
        start: u64,
    },
    /// A segment `[start, end)` ended; its envelope is [`Segmenter::envelope`] until the next push.
    Ended {
        start: u64,
        end: u64,
    },
}

/// VAD plus the clamped per-frame dBFS of the current segment.
#[derive(Debug)]
pub(crate) struct Segmenter {
    vad: Vad,
    frames: u64,
    /// dBFS per frame from `seg_start`: the pre-roll while idle, the segment while speaking.
    env: Vec<f32>,
    seg_start: u64,
    /// The last segment was handed out; start afresh on the next frame.
    restart: bool,
}

impl Segmenter {
    pub(crate) fn new(cfg: VadConfig) -> Self {
        Self { vad: Vad::new(cfg), frames: 0, env: Vec::with_capacity(512), seg_start: 0, restart: false }
    }

    pub(crate) fn push_frame(&mut self, frame: &[i16]) -> SegEvent {
        if self.restart {
            self.env.clear();
            self.seg_start = self.frames;
            self.restart = false;
        }
        let ev = self.vad.push(frame);
        self.env.push(self.vad.last_dbfs().max(SILENCE_DB));
        self.frames += 1;
        let cfg = *self.vad.config();
        match ev {
            VadEvent::SpeechStart => {
                let keep = self.env.len().min(cfg.start_frames.max(1) as usize);
                self.env.drain(..self.env.len() - keep);
                self.seg_start = self.frames - keep as u64;
                SegEvent::Started { start: self.seg_start }
            }
            VadEvent::SpeechEnd => {
                let len = self.env.len().saturating_sub(cfg.hangover_frames as usize);
                self.env.truncate(len);
                self.restart = true;
                SegEvent::Ended { start: self.seg_start, end: self.seg_start + len as u64 }
            }
            VadEvent::None => {
                if !self.vad.is_speaking() {
                    // Idle: keep just enough pre-roll to cover the frames a start looks back on.
                    let keep = cfg.start_frames.max(1) as usize;
                    if self.env.len() > keep {
                        self.env.drain(..self.env.len() - keep);
                    }
                    self.seg_start = self.frames - self.env.len() as u64;
                }
                SegEvent::None
            }
        }
    }

    /// Close the segment in progress now (Finalize, end of file), without waiting for the
    /// hangover. Trailing quiet frames are trimmed. `None` when not speaking or nothing voiced.
    pub(crate) fn cut(&mut self) -> Option<(u64, u64)> {
        if !self.vad.is_speaking() || self.restart {
            return None;
        }
        let floor = self.vad.config().min_speech_dbfs;
        let voiced = self.env.iter().rposition(|&db| db >= floor).map_or(0, |i| i + 1);
        self.env.truncate(voiced);
        self.restart = true;
        (voiced > 0).then_some((self.seg_start, self.seg_start + voiced as u64))
    }

    /// Envelope of the segment in progress, or of the one just ended or cut.
    pub(crate) fn envelope(&self) -> &[f32] {
        &self.env
    }

    pub(crate) fn is_speaking(&self) -> bool {
        self.vad.is_speaking() && !self.restart
    }

    /// Frames pushed so far.
    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    /// First frame of the segment in progress.
    pub(crate) fn segment_start(&self) -> u64 {
        self.seg_start
    }
}

/// Every speech segment of a recording as `(start_frame, end_frame, envelope)`.
pub(crate) fn segments(samples: &[i16], frame_len: usize, cfg: VadConfig) -> Vec<(u64, u64, Vec<f32>)> {
    let mut framer = Framer::new(frame_len);
    let mut seg = Segmenter::new(cfg);
    let mut out = Vec::new();
    framer.feed(samples, |frame| {
        if let SegEvent::Ended { start, end } = seg.push_frame(frame) {
            if end > start {
                out.push((start, end, seg.envelope().to_vec()));
            }
        }
    });
    if let Some((start, end)) = seg.cut() {
        out.push((start, end, seg.envelope().to_vec()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<i16> {
        (0..n).map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16).collect()
    }

    #[test]
    fn framer_carries_remainders_across_feeds() {
        let mut framer = Framer::new(4);
        let mut frames = Vec::new();
        let input: Vec<i16> = (0..11).collect();
        framer.feed(&input[..3], |f| frames.push(f.to_vec()));
        framer.feed(&input[3..10], |f| frames.push(f.to_vec()));
        framer.feed(&input[10..], |f| frames.push(f.to_vec()));
        assert_eq!(frames, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        framer.feed(&[11], |f| frames.push(f.to_vec()));
        assert_eq!(frames.last().unwrap(), &vec![8, 9, 10, 11]);
    }

    #[test]
    fn segments_cover_exactly_the_loud_frames() {
        // 10 quiet, 25 loud, 5 quiet (short pause), 10 loud, 30 quiet; 160-sample frames.
        let mut pcm = vec![0i16; 160 * 10];
        pcm.extend(tone(160 * 25));
        pcm.extend(vec![0; 160 * 5]);
        pcm.extend(tone(160 * 10));
        pcm.extend(vec![0; 160 * 30]);
        let segs = segments(&pcm, 160, VadConfig::default());
        assert_eq!(segs.len(), 1);
        let (start, end, env) = &segs[0];
        assert_eq!((*start, *end), (10, 50));
        assert_eq!(env.len(), 40);
        assert!(env[0] > -30.0 && env[26] == SILENCE_DB);
    }

    #[test]
    fn cut_trims_and_restarts() {
        let mut seg = Segmenter::new(VadConfig::default());
        for _ in 0..5 {
            seg.push_frame(&[0; 160]);
        }
        let loud = tone(160);
        for _ in 0..10 {
            seg.push_frame(&loud);
        }
        seg.push_frame(&[0; 160]);
        assert_eq!(seg.cut(), Some((5, 15)));
        assert_eq!(seg.envelope().len(), 10);
        assert!(!seg.is_speaking());
        assert_eq!(seg.cut(), None);
        seg.push_frame(&loud);
        assert!(seg.is_speaking());
        assert_eq!(seg.segment_start(), 16);
    }
}
