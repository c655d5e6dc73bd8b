//! The simulated recognizer: VAD segments of live audio in, Deepgram-shaped results out. Pure
//! (no I/O, no clock): the connection decides when each result is sent.

use crate::catalog::{placeholder, Catalog, Entry};
use crate::segmenter::{Framer, SegEvent, Segmenter};
use media::VadConfig;
use std::sync::Arc;

/// What the connection asked for, from the `/v1/listen` query.
#[derive(Debug, Clone)]
pub struct RecOpts {
    pub sample_rate: u32,
    /// Audio frames (20 ms) between interim results; 0 = `interim_results=false`.
    pub interim_every_frames: u64,
    pub vad_events: bool,
    /// `endpointing` was not `false`: finals at end of speech carry `speech_final`.
    pub speech_final: bool,
    /// Silence frames that end speech (`endpointing` / 20 ms).
    pub hangover_frames: u32,
    pub utterance_end_ms: Option<u32>,
    pub punctuate: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Word {
    pub punctuated: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// One result window: `start`/`duration` of the Results message, its transcript and words.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hyp {
    pub start_s: f64,
    pub end_s: f64,
    pub transcript: String,
    pub words: Vec<Word>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    Interim(Hyp),
    Final {
        hyp: Hyp,
        speech_final: bool,
        from_finalize: bool,
        /// Endpointed finals take the provider's processing delay; flushes go out at once.
        delay: bool,
    },
    SpeechStarted {
        at_s: f64,
    },
    UtteranceEnd {
        last_word_end_s: f64,
    },
}

pub(crate) struct Recognizer {
    framer: Framer,
    seg: Segmenter,
    st: State,
}

struct State {
    catalog: Arc<Catalog>,
    opts: RecOpts,
    frame_s: f64,
    since_interim: u64,
    /// First frame of the current result window (end of the previous final's window).
    window_start: u64,
    /// End of the last final's speech, until an `UtteranceEnd` reports it.
    last_word_end_s: Option<f64>,
}

impl Recognizer {
    pub(crate) fn new(opts: RecOpts, catalog: Arc<Catalog>) -> Self {
        let frame_len = media::samples_per_20ms(opts.sample_rate.max(50));
        let cfg = VadConfig { hangover_frames: opts.hangover_frames.max(1), ..VadConfig::default() };
        Self {
            framer: Framer::new(frame_len),
            seg: Segmenter::new(cfg),
            st: State {
                catalog,
                frame_s: frame_len as f64 / f64::from(opts.sample_rate.max(50)),
                opts,
                since_interim: 0,
                window_start: 0,
                last_word_end_s: None,
            },
        }
    }

    /// Feed decoded linear16 samples; results are appended to `out`.
    pub(crate) fn push(&mut self, pcm: &[i16], out: &mut Vec<Out>) {
        let Self { framer, seg, st } = self;
        framer.feed(pcm, |frame| {
            let ev = seg.push_frame(frame);
            st.after_frame(seg, ev, out);
        });
    }

    /// `Finalize`: the speech in progress becomes a final now (`from_finalize`).
    pub(crate) fn finalize(&mut self, out: &mut Vec<Out>) {
        self.st.cut(&mut self.seg, true, out);
    }

    /// `CloseStream`: like finalize, but only when speech is in progress.
    pub(crate) fn flush(&mut self, out: &mut Vec<Out>) {
        if self.seg.is_speaking() {
            self.st.cut(&mut self.seg, false, out);
        }
    }
}

impl State {
    /// Stream time of a frame boundary, to the millisecond like the provider reports it.
    fn secs(&self, frame: u64) -> f64 {
        (frame as f64 * self.frame_s * 1000.0).round() / 1000.0
    }

    fn after_frame(&mut self, seg: &Segmenter, ev: SegEvent, out: &mut Vec<Out>) {
        let now = seg.frames();
        match ev {
            SegEvent::Started { start } => {
                self.since_interim = 0;
                self.last_word_end_s = None;
                if self.opts.vad_events {
                    out.push(Out::SpeechStarted { at_s: self.secs(start) });
                }
            }
            SegEvent::Ended { start, end } => {
                if end > start {
                    let hyp = self.final_hyp(seg.envelope(), start, end, now);
                    out.push(Out::Final {
                        hyp,
                        speech_final: self.opts.speech_final,
                        from_finalize: false,
                        delay: true,
                    });
                    self.last_word_end_s = Some(self.secs(end));
                    self.window_start = now;
                }
            }
            SegEvent::None if seg.is_speaking() => {
                self.since_interim += 1;
                let every = self.opts.interim_every_frames;
                if every > 0 && self.since_interim >= every {
                    self.since_interim = 0;
                    out.push(Out::Interim(self.interim_hyp(seg.envelope(), seg.segment_start(), now)));
                }
            }
            SegEvent::None => {
                if let (Some(last), Some(ms)) = (self.last_word_end_s, self.opts.utterance_end_ms) {
                    if self.secs(now) - last >= f64::from(ms) / 1000.0 {
                        out.push(Out::UtteranceEnd { last_word_end_s: last });
                        self.last_word_end_s = None;
                    }
                }
            }
        }
    }

    fn cut(&mut self, seg: &mut Segmenter, from_finalize: bool, out: &mut Vec<Out>) {
        let now = seg.frames();
        let hyp = match seg.cut() {
            Some((start, end)) => {
                self.last_word_end_s = Some(self.secs(end));
                self.final_hyp(seg.envelope(), start, end, now)
            }
            None => Hyp {
                start_s: self.secs(self.window_start),
                end_s: self.secs(now),
                transcript: String::new(),
                words: Vec::new(),
            },
        };
        out.push(Out::Final { hyp, speech_final: false, from_finalize, delay: false });
        self.window_start = now;
        self.since_interim = 0;
    }

    fn final_hyp(&self, env: &[f32], start: u64, end: u64, now: u64) -> Hyp {
        let (s, e) = (self.secs(start), self.secs(end));
        match self.catalog.best(env, self.frame_s) {
            Some(entry) => self.hyp(words_of(entry), 1.0, s, e, now),
            None => self.placeholder_hyp(e - s, now),
        }
    }

    fn interim_hyp(&self, env: &[f32], start: u64, now: u64) -> Hyp {
        let (s, e) = (self.secs(start), self.secs(now));
        match self.catalog.best_prefix(env, self.frame_s) {
            Some((entry, heard)) => self.hyp(words_of(entry), heard, s, e, now),
            None => self.placeholder_hyp(e - s, now),
        }
    }

    fn placeholder_hyp(&self, duration_s: f64, now: u64) -> Hyp {
        Hyp {
            start_s: self.secs(self.window_start),
            end_s: self.secs(now),
            transcript: placeholder(duration_s),
            words: Vec::new(),
        }
    }

    /// The first `fraction` of `words`, timed over speech `[s, e]`, by character count.
    fn hyp(&self, words: Vec<&str>, fraction: f64, s: f64, e: f64, now: u64) -> Hyp {
        let k = ((words.len() as f64 * fraction).ceil() as usize).clamp(1, words.len().max(1));
        let words = words.get(..k.min(words.len())).unwrap_or_default();
        let total: usize = words.iter().map(|w| w.chars().count() + 1).sum();
        let mut t = s;
        let timed: Vec<Word> = words
            .iter()
            .map(|w| {
                let d = (e - s) * (w.chars().count() + 1) as f64 / total.max(1) as f64;
                let word = Word { punctuated: (*w).to_string(), start_s: t, end_s: t + d };
                t += d;
                word
            })
            .collect();
        let transcript = if self.opts.punctuate {
            words.join(" ")
        } else {
            timed.iter().map(|w| bare(&w.punctuated)).collect::<Vec<_>>().join(" ")
        };
        Hyp { start_s: self.secs(self.window_start), end_s: self.secs(now), transcript, words: timed }
    }
}

fn words_of(entry: &Entry) -> Vec<&str> {
    entry.text.split_whitespace().collect()
}

/// A word as Deepgram's `word` field has it: lower case, no punctuation.
pub(crate) fn bare(word: &str) -> String {
    word.chars().filter(|c| c.is_alphanumeric() || *c == '\'').flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{self, RATE, TEXT_A};

    fn opts() -> RecOpts {
        RecOpts {
            sample_rate: RATE,
            interim_every_frames: 20,
            vad_events: true,
            speech_final: true,
            hangover_frames: 15,
            utterance_end_ms: Some(1000),
            punctuate: true,
        }
    }

    #[test]
    fn a_known_utterance_gives_interims_then_its_final_then_utterance_end() {
        let dir = testdata::catalog_dir();
        let catalog = Arc::new(Catalog::from_dir(dir.path()).unwrap());
        let mut rec = Recognizer::new(opts(), catalog);
        let mut pcm = testdata::silence(0.4);
        pcm.extend(testdata::utterance_a());
        pcm.extend(testdata::silence(1.6));
        let mut out = Vec::new();
        for chunk in pcm.chunks(320) {
            rec.push(chunk, &mut out);
        }
        assert_eq!(out.first(), Some(&Out::SpeechStarted { at_s: 0.4 }));
        let interims: Vec<&Hyp> =
            out.iter().filter_map(|o| if let Out::Interim(h) = o { Some(h) } else { None }).collect();
        assert_eq!(interims.len(), 3, "{out:?}");
        assert!(TEXT_A.starts_with(&interims[0].transcript) && interims[0].transcript.len() < TEXT_A.len());
        let Some(Out::Final { hyp, speech_final: true, from_finalize: false, delay: true }) =
            out.iter().find(|o| matches!(o, Out::Final { .. }))
        else {
            panic!("no final in {out:?}");
        };
        assert_eq!(hyp.transcript, TEXT_A);
        assert_eq!(hyp.words.len(), 6);
        assert!((hyp.words[0].start_s - 0.4).abs() < 1e-9 && (hyp.words[5].end_s - 1.6).abs() < 1e-9);
        assert_eq!((hyp.start_s, hyp.end_s), (0.0, 1.9));
        assert_eq!(out.last(), Some(&Out::UtteranceEnd { last_word_end_s: 1.6 }));
    }

    #[test]
    fn finalize_flushes_speech_in_progress() {
        let mut rec = Recognizer::new(RecOpts { punctuate: false, ..opts() }, Arc::new(Catalog::empty()));
        let mut out = Vec::new();
        rec.push(&testdata::utterance_b()[..RATE as usize / 2], &mut out);
        rec.finalize(&mut out);
        match out.last() {
            Some(Out::Final { hyp, speech_final: false, from_finalize: true, delay: false }) => {
                assert_eq!(hyp.transcript, "[speech 0.5 s]");
            }
            other => panic!("{other:?}"),
        }
        out.clear();
        rec.finalize(&mut out);
        assert!(matches!(&out[..], [Out::Final { hyp, from_finalize: true, .. }] if hyp.transcript.is_empty()));
        assert_eq!(bare("Hours?"), "hours");
    }
}
