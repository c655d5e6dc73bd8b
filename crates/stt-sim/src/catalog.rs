//! Known recordings and their transcripts, so the simulator can "recognize" audio it has heard:
//! each speech segment of a catalog WAV is fingerprinted and labelled from its JSON sidecar.

use super::fingerprint::{self, Trim};
use super::segmenter;
use media::VadConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Live segments whose duration is off by more than this fraction are not candidates.
const DURATION_TOLERANCE: f64 = 0.25;
/// Minimum envelope correlation to accept a match. Edge alignment lifts unrelated speech to
/// ~0.65 on the espeak calls while true matches score ≥ 0.97, even after 8 kHz µ-law.
const MIN_SCORE: f32 = 0.75;
/// Interims are best-effort guesses from a partial envelope; a looser bar is fine.
const MIN_PREFIX_SCORE: f32 = 0.6;
/// Segments shorter than this carry too little rhythm to compare.
const MIN_FRAMES: usize = 5;

/// One sidecar utterance: `{"start_s":0.5,"end_s":2.3,"text":"Hello."}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Utterance {
    pub start_s: f64,
    pub end_s: f64,
    pub text: String,
}

#[derive(Deserialize)]
struct Sidecar {
    utterances: Vec<Utterance>,
}

/// The utterances of a recording's sidecar JSON (`assets/calls/<name>.json`).
pub fn read_sidecar(path: &Path) -> Result<Vec<Utterance>, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io { path: path.to_path_buf(), source })?;
    let side: Sidecar = serde_json::from_str(&text)
        .map_err(|e| CatalogError::Sidecar { path: path.to_path_buf(), msg: e.to_string() })?;
    Ok(side.utterances)
}

/// A fingerprinted speech segment and the text it stands for.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub text: String,
    pub duration_s: f64,
    /// Per-20 ms dBFS, clamped at [`fingerprint::SILENCE_DB`].
    pub envelope: Vec<f32>,
    /// Shapes at small edge trims, for alignment-tolerant whole-segment matching.
    pub trims: Vec<Trim>,
}

/// Why a catalog directory could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("reading {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {msg}", path.display())]
    Wav { path: PathBuf, msg: String },
    #[error("{}: bad sidecar: {msg}", path.display())]
    Sidecar { path: PathBuf, msg: String },
}

impl CatalogError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "catalog_io",
            Self::Wav { .. } => "catalog_wav",
            Self::Sidecar { .. } => "catalog_sidecar",
        }
    }
}

/// Fingerprinted utterances to match live speech against. Empty means every final is a
/// `[speech N.N s]` placeholder.
#[derive(Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Catalog({} segments)", self.entries.len())
    }
}

impl Catalog {
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads every `*.wav` (16-bit PCM, any rate; channels averaged to mono) that has a sidecar
    /// `<stem>.json`. WAVs without a sidecar are skipped with a warning.
    /// A catalog of recordings held in memory: `(name, WAV bytes, sidecar JSON)`.
    pub fn from_recordings(recordings: &[(&str, &[u8], &str)]) -> Result<Self, CatalogError> {
        let mut catalog = Self::empty();
        for (name, wav, json) in recordings {
            let path = PathBuf::from(format!("{name}.json"));
            let side: Sidecar =
                serde_json::from_str(json).map_err(|e| CatalogError::Sidecar { path, msg: e.to_string() })?;
            let (samples, rate) = media::wav::read_wav_bytes(wav)
                .map_err(|e| CatalogError::Wav { path: PathBuf::from(format!("{name}.wav")), msg: e.to_string() })?;
            catalog.add_recording(&samples, rate, &side.utterances);
        }
        Ok(catalog)
    }

    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CatalogError::Io { path, source }
        };
        let mut wavs = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let is_wav = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"));
            if is_wav && path.is_file() {
                wavs.push(path);
            }
        }
        wavs.sort();
        let mut catalog = Self::empty();
        for wav in wavs {
            let sidecar = wav.with_extension("json");
            if !sidecar.is_file() {
                tracing::warn!(wav = %wav.display(), "catalog: no sidecar JSON; skipped");
                continue;
            }
            let utterances = read_sidecar(&sidecar)?;
            let (samples, rate) = read_wav(&wav)?;
            catalog.add_recording(&samples, rate, &utterances);
        }
        Ok(catalog)
    }

    /// Segments a recording and labels each speech segment with the utterance it overlaps most.
    /// An utterance split into several segments by pauses gets its text shared among them.
    pub fn add_recording(&mut self, samples: &[i16], sample_rate: u32, utterances: &[Utterance]) {
        if sample_rate < 50 {
            return;
        }
        let frame_len = media::samples_per_20ms(sample_rate);
        let frame_s = frame_len as f64 / f64::from(sample_rate);
        let segs = segmenter::segments(samples, frame_len, VadConfig::default());
        let mut groups: Vec<Vec<(f64, Vec<f32>)>> = vec![Vec::new(); utterances.len()];
        for (start, end, env) in segs {
            let (s, e) = (start as f64 * frame_s, end as f64 * frame_s);
            let best = utterances
                .iter()
                .enumerate()
                .map(|(i, u)| (i, e.min(u.end_s) - s.max(u.start_s)))
                .filter(|&(_, overlap)| overlap > 0.0)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best.and_then(|(i, _)| groups.get_mut(i)) {
                Some(group) => group.push((e - s, env)),
                None => tracing::debug!(start_s = s, end_s = e, "catalog: segment outside every utterance"),
            }
        }
        for (u, group) in utterances.iter().zip(groups) {
            if group.is_empty() {
                tracing::warn!(start_s = u.start_s, "catalog: no speech found for an utterance");
                continue;
            }
            let durations: Vec<f64> = group.iter().map(|(d, _)| *d).collect();
            for ((duration_s, envelope), text) in group.into_iter().zip(split_text(&u.text, &durations)) {
                if text.is_empty() || envelope.len() < MIN_FRAMES {
                    continue;
                }
                let trims = fingerprint::trims(&envelope);
                self.entries.push(Entry { text, duration_s, envelope, trims });
            }
        }
    }

    /// Number of fingerprinted segments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The transcript for a finished live segment (envelope of 20 ms frames), if one matches.
    pub fn transcribe(&self, envelope: &[f32], frame_s: f64) -> Option<&str> {
        self.best(envelope, frame_s).map(|e| e.text.as_str())
    }

    /// Best whole-segment match: similar duration, correlated envelope.
    pub(crate) fn best(&self, envelope: &[f32], frame_s: f64) -> Option<&Entry> {
        if envelope.len() < MIN_FRAMES {
            return None;
        }
        let duration = envelope.len() as f64 * frame_s;
        let live = fingerprint::trims(envelope);
        self.entries
            .iter()
            .filter(|e| (duration - e.duration_s).abs() <= DURATION_TOLERANCE * e.duration_s)
            .map(|e| (e, fingerprint::aligned_similarity(&live, &e.trims)))
            .filter(|&(_, score)| score >= MIN_SCORE)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(e, _)| e)
    }

    /// Best candidate for speech still in progress: its opening matches what was heard so far.
    /// Returns the entry and the fraction of it heard.
    pub(crate) fn best_prefix(&self, envelope: &[f32], frame_s: f64) -> Option<(&Entry, f64)> {
        if envelope.len() < MIN_FRAMES {
            return None;
        }
        let heard = envelope.len() as f64 * frame_s;
        let live = fingerprint::shape(envelope);
        self.entries
            .iter()
            .filter(|e| heard <= e.duration_s * (1.0 + DURATION_TOLERANCE))
            .filter_map(|e| {
                let n = envelope.len().min(e.envelope.len());
                let prefix = e.envelope.get(..n)?;
                let score = fingerprint::similarity(&live, &fingerprint::shape(prefix));
                (score >= MIN_PREFIX_SCORE).then_some((e, score))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(e, _)| (e, (heard / e.duration_s).min(1.0)))
    }
}

/// Text for a segment nothing matched, e.g. `[speech 1.4 s]`.
pub(crate) fn placeholder(duration_s: f64) -> String {
    format!("[speech {duration_s:.1} s]")
}

fn read_wav(path: &Path) -> Result<(Vec<i16>, u32), CatalogError> {
    media::wav::read_wav(path).map_err(|e| CatalogError::Wav { path: path.to_path_buf(), msg: e.to_string() })
}

/// Share an utterance's text among the segments a pause split it into: one sentence each when
/// the counts agree, otherwise words in proportion to segment duration.
fn split_text(text: &str, durations: &[f64]) -> Vec<String> {
    if durations.len() <= 1 {
        return vec![text.trim().to_string()];
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut sentences: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for w in &words {
        current.push(w);
        if w.ends_with(['.', '?', '!']) {
            sentences.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        sentences.push(current.join(" "));
    }
    if sentences.len() == durations.len() {
        return sentences;
    }
    let total: f64 = durations.iter().sum::<f64>().max(f64::EPSILON);
    let mut out = Vec::with_capacity(durations.len());
    let (mut cum, mut from) = (0.0, 0usize);
    for d in durations {
        cum += d;
        let to = ((words.len() as f64 * cum / total).round() as usize).clamp(from, words.len());
        out.push(words.get(from..to).map(|w| w.join(" ")).unwrap_or_default());
        from = to;
    }
    out
}

#[cfg(test)]
mod tests;
