//! The task behind one Polly stream: the first piece of text (the reply's first phrase) as a
//! request of its own, then text gathered into sentences, one `SynthesizeSpeech` per sentence in
//! order, PCM chunks forwarded as they arrive, cumulative usage after each flush.

use super::{error_from, send_error, signed_headers};
use crate::{TtsError, TtsEvent, TtsInput};
use aws::Signer;
use bytes::Bytes;
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

/// Polly refuses a request over 3000 billed characters; a longer run without a sentence end is
/// cut at a space before this.
const MAX_REQUEST_CHARS: usize = 2500;

pub(super) struct Job {
    pub http: reqwest::Client,
    pub url: Url,
    pub signer: Signer,
    pub engine: String,
    pub voice: String,
    /// Rate asked of Polly (8000 or 16000).
    pub polly_rate: u32,
    /// Polly rate → the session's rate, when they differ.
    pub resampler: Option<media::Resampler>,
    pub request_timeout: Duration,
}

/// Why a synthesis stopped early.
enum Stop {
    Failed(TtsError),
    ConsumerGone,
}

struct Pump {
    job: Job,
    events: mpsc::Sender<TtsEvent>,
    /// Billed characters so far (Polly's count, or ours when it sends none).
    characters: u64,
    /// Odd trailing byte of the last body chunk, completed by the next one.
    odd: Option<u8>,
    samples: Vec<i16>,
    resampled: Vec<i16>,
}

pub(super) async fn run(job: Job, mut input: mpsc::Receiver<TtsInput>, events: mpsc::Sender<TtsEvent>) {
    let mut p = Pump { job, events, characters: 0, odd: None, samples: Vec::new(), resampled: Vec::new() };
    let mut buf = String::new();
    // Text synthesized since the last `Done`.
    let mut undone = false;
    // Text has come: the stream's first piece (the reply's first phrase) is its own request,
    // so the caller hears it before its sentence ends.
    let mut spoke = false;
    let stop = loop {
        let (flush, close, first) = match input.recv().await {
            Some(TtsInput::Text(t)) => {
                buf.push_str(&t);
                let first = !t.trim().is_empty() && !std::mem::replace(&mut spoke, true);
                (false, false, first)
            }
            Some(TtsInput::Flush) => (true, false, false),
            Some(TtsInput::Close) | None => (true, true, false),
        };
        let mut failed = None;
        while let Some(sentence) = take_sentence(&mut buf, flush || first) {
            undone = true;
            if let Err(stop) = p.synthesize(&sentence).await {
                failed = Some(stop);
                break;
            }
        }
        if let Some(stop) = failed {
            break Some(stop);
        }
        if close {
            break None;
        }
        if flush {
            undone = false;
            if !p.emit(TtsEvent::Usage { characters: p.characters }).await || !p.emit(TtsEvent::Done).await {
                break Some(Stop::ConsumerGone);
            }
        }
    };
    match stop {
        Some(Stop::ConsumerGone) => {}
        Some(Stop::Failed(e)) => {
            tracing::warn!(code = e.code(), error = %e, "polly synthesis failed");
            if p.emit(TtsEvent::Error(e)).await {
                let _ = p.emit(TtsEvent::Usage { characters: p.characters }).await;
            }
        }
        None => {
            if p.emit(TtsEvent::Usage { characters: p.characters }).await && undone {
                let _ = p.emit(TtsEvent::Done).await;
            }
        }
    }
}

impl Pump {
    async fn emit(&mut self, ev: TtsEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    /// One `SynthesizeSpeech` call, its body forwarded chunk by chunk. A caller that hangs up
    /// (barge-in drops the stream) cancels the request at once.
    async fn synthesize(&mut self, text: &str) -> Result<(), Stop> {
        let events = self.events.clone();
        tokio::select! {
            r = self.request(text) => r,
            () = events.closed() => Err(Stop::ConsumerGone),
        }
    }

    async fn request(&mut self, text: &str) -> Result<(), Stop> {
        let Job { http, url, signer, engine, voice, polly_rate, request_timeout, .. } = &self.job;
        let body = json!({
            "Engine": engine,
            "OutputFormat": "pcm",
            "SampleRate": polly_rate.to_string(),
            "Text": text,
            "TextType": "text",
            "VoiceId": voice,
        })
        .to_string();
        let headers =
            signed_headers(signer, "POST", url, Some("application/json"), body.as_bytes()).map_err(Stop::Failed)?;
        let send = http.post(url.clone()).headers(headers).body(body).timeout(*request_timeout).send();
        let mut resp = send.await.map_err(|e| Stop::Failed(send_error(e)))?;
        if !resp.status().is_success() {
            return Err(Stop::Failed(error_from(resp).await));
        }
        let billed = resp
            .headers()
            .get("x-amzn-RequestCharacters")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        self.characters += billed.unwrap_or(text.chars().count() as u64);
        self.odd = None;
        while let Some(chunk) = resp.chunk().await.map_err(|e| Stop::Failed(send_error(e)))? {
            if let Some(pcm) = self.pcm_of(&chunk) {
                if !self.emit(TtsEvent::Audio { pcm, alignment: None }).await {
                    return Err(Stop::ConsumerGone);
                }
            }
        }
        Ok(())
    }

    /// Whole s16le samples of `chunk` (an odd byte waits for the next chunk), resampled to the
    /// session's rate when Polly's differs. `None` when nothing is ready yet.
    fn pcm_of(&mut self, chunk: &[u8]) -> Option<Bytes> {
        let mut rest = chunk;
        let mut out = Vec::with_capacity(chunk.len() + 1);
        if let (Some(lo), Some((&hi, tail))) = (self.odd, chunk.split_first()) {
            out.extend_from_slice(&[lo, hi]);
            self.odd = None;
            rest = tail;
        }
        let even = rest.len() & !1;
        out.extend_from_slice(rest.get(..even).unwrap_or_default());
        if let Some(&b) = rest.get(even) {
            self.odd = Some(b);
        }
        let Some(resampler) = self.job.resampler.as_mut() else {
            return (!out.is_empty()).then(|| Bytes::from(out));
        };
        self.samples.clear();
        self.samples.extend(out.chunks_exact(2).map(|p| match p {
            [lo, hi] => i16::from_le_bytes([*lo, *hi]),
            _ => 0,
        }));
        self.resampled.clear();
        if let Err(e) = resampler.process(&self.samples, &mut self.resampled) {
            tracing::warn!(error = %e, "resampling polly audio failed");
            return None;
        }
        let bytes: Vec<u8> = self.resampled.iter().flat_map(|s| s.to_le_bytes()).collect();
        (!bytes.is_empty()).then(|| Bytes::from(bytes))
    }
}

/// The next piece to synthesize: everything up to the last sentence end (`.`, `!`, `?`, `;`,
/// `:` or a newline, followed by a space or the end of the text, and not a decimal point), or
/// with `flush` everything left. Overlong runs are cut at a space.
pub(super) fn take_sentence(buf: &mut String, flush: bool) -> Option<String> {
    let chars: Vec<(usize, char)> = buf.char_indices().collect();
    let mut cut = None;
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).map(|&(_, p)| p);
        let end = match c {
            '\n' => true,
            '.' | '!' | '?' | ';' | ':' | '。' | '！' | '？' => {
                next.is_none_or(char::is_whitespace)
                    && !(c == '.' && prev.is_some_and(|p| p.is_ascii_digit()) && next.is_none())
            }
            _ => false,
        };
        if end {
            cut = Some(at + c.len_utf8());
        }
        if i >= MAX_REQUEST_CHARS {
            break;
        }
    }
    if cut.is_none() && chars.len() > MAX_REQUEST_CHARS {
        let limit = chars.get(MAX_REQUEST_CHARS).map_or(buf.len(), |&(at, _)| at);
        cut = Some(buf.get(..limit).and_then(|s| s.rfind(' ')).unwrap_or(limit));
    }
    if flush && cut.is_none() {
        cut = Some(buf.len());
    }
    let cut = cut?;
    let piece: String = buf.drain(..cut).collect();
    let rest = buf.trim_start().len();
    buf.drain(..buf.len() - rest);
    let piece = piece.trim();
    if piece.is_empty() {
        // Only whitespace so far; with `flush` the buffer is now empty too.
        return if buf.is_empty() { None } else { take_sentence(buf, flush) };
    }
    Some(piece.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_cut_at_their_ends_only() {
        let mut b = String::from("Hello there. How are");
        assert_eq!(take_sentence(&mut b, false).as_deref(), Some("Hello there."));
        assert_eq!(b, "How are");
        assert_eq!(take_sentence(&mut b, false), None);
        b.push_str(" you? It costs 3.5 dollars");
        assert_eq!(take_sentence(&mut b, false).as_deref(), Some("How are you?"));
        assert_eq!(take_sentence(&mut b, false), None);
        assert_eq!(take_sentence(&mut b, true).as_deref(), Some("It costs 3.5 dollars"));
        assert!(b.is_empty() && take_sentence(&mut b, true).is_none());
        let mut b = String::from("Two lines\nand more. And the end!");
        assert_eq!(take_sentence(&mut b, false).as_deref(), Some("Two lines\nand more. And the end!"));
        let mut b = String::from("   ");
        assert_eq!(take_sentence(&mut b, true), None);
        let mut b = "word ".repeat(700);
        let first = take_sentence(&mut b, false).unwrap();
        assert!(first.chars().count() <= MAX_REQUEST_CHARS && first.ends_with("word"));
    }
}
