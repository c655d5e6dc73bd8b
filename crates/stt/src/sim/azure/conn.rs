//! One simulated USP connection: validate every message like the service, run the recognizer
//! per turn, and send turn.start / speech.* / turn.end in order, each no earlier than its due time.

use super::Shared;
use crate::sim::recognizer::{bare, Hyp, Out, RecOpts, Recognizer};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::StreamExt;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use usp::Headers;

/// What the upgrade request asked for.
pub(super) struct Opts {
    /// `format=detailed`: phrases carry `NBest`.
    pub detailed: bool,
    pub segmentation_ms: u32,
}

/// Why the connection must close: code and reason, as the service sends them.
struct Violation(u16, &'static str);

struct Turn {
    id: String,
    rec: Recognizer,
    /// PCM bytes per second announced by the WAV header.
    bytes_per_s: u64,
    bytes: u64,
    /// Between `speech.startDetected` and `speech.endDetected`.
    in_speech: bool,
    odd: Option<u8>,
}

struct Conn<'a> {
    shared: &'a Shared,
    opts: Opts,
    turn: Option<Turn>,
    /// Request ids whose turn ended; reusing one is a protocol violation.
    finished: Vec<String>,
    outbox: VecDeque<(Instant, String)>,
    out: Vec<Out>,
    pcm: Vec<i16>,
    audio_ms: u64,
}

pub(super) async fn run(mut ws: WebSocket, opts: Opts, shared: &Shared) {
    let mut c = Conn {
        shared,
        opts,
        turn: None,
        finished: Vec::new(),
        outbox: VecDeque::new(),
        out: Vec::new(),
        pcm: Vec::with_capacity(4096),
        audio_ms: 0,
    };
    loop {
        let due = c.outbox.front().map(|(d, _)| *d);
        let result = tokio::select! {
            () = shared.stop.cancelled() => return,
            msg = ws.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(t))) => c.on_text(&t),
                Some(Ok(Message::Binary(b))) => c.on_binary(&b),
                Some(Ok(_)) => Ok(()),
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => Ok(()),
        };
        let now = Instant::now();
        while c.outbox.front().is_some_and(|(d, _)| *d <= now) {
            if let Some((_, msg)) = c.outbox.pop_front() {
                if ws.send(Message::text(msg)).await.is_err() {
                    return;
                }
            }
        }
        if let Err(Violation(code, reason)) = result {
            close(&mut ws, code, reason).await;
            return;
        }
    }
}

async fn close(ws: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame { code, reason: reason.into() };
    if ws.send(Message::Close(Some(frame))).await.is_ok() {
        let _ =
            tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = ws.next().await {} }).await;
    }
}

/// `Path` and a well-formed `X-RequestId` are required on every client message.
fn required<'a>(h: &Headers<'a>) -> Result<(&'a str, &'a str), Violation> {
    let path = h.path.ok_or(Violation(1002, "Missing/Empty header. Path."))?;
    let id = h.request_id.ok_or(Violation(1002, "Missing/Empty header. X-RequestId."))?;
    if !usp::is_id(id) {
        return Err(Violation(1002, "Invalid X-RequestId. Expected a UUID without dashes."));
    }
    Ok((path, id))
}

impl Conn<'_> {
    fn on_text(&mut self, frame: &str) -> Result<(), Violation> {
        let (h, body) = usp::parse_text(frame).map_err(|e| Violation(1007, e.reason()))?;
        let (path, id) = required(&h)?;
        match path.to_ascii_lowercase().as_str() {
            "speech.config" | "speech.context" | "telemetry" => {
                serde_json::from_str::<serde_json::Value>(body)
                    .map_err(|_| Violation(1007, "Invalid JSON payload."))?;
                if path.eq_ignore_ascii_case("speech.context") && self.is_finished(id) {
                    return Err(Violation(1002, "X-RequestId was already used for a finished turn."));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn is_finished(&self, id: &str) -> bool {
        self.finished.iter().any(|f| f.eq_ignore_ascii_case(id))
    }

    fn on_binary(&mut self, frame: &[u8]) -> Result<(), Violation> {
        let (h, body) = usp::parse_binary(frame).map_err(|e| Violation(1007, e.reason()))?;
        let (path, id) = required(&h)?;
        if !path.eq_ignore_ascii_case("audio") {
            return Ok(());
        }
        if self.is_finished(id) {
            return Err(Violation(1002, "X-RequestId was already used for a finished turn."));
        }
        let same_turn = self.turn.as_ref().is_some_and(|t| t.id.eq_ignore_ascii_case(id));
        if !same_turn {
            return self.begin_turn(id, h.content_type, body);
        }
        if body.is_empty() {
            self.end_turn();
            return Ok(());
        }
        self.audio(body)
    }

    /// The first audio message of a request must carry the RIFF header of the stream.
    fn begin_turn(&mut self, id: &str, content_type: Option<&str>, body: &[u8]) -> Result<(), Violation> {
        let bad = Violation(1007, "Invalid audio format: the first audio message must carry a RIFF/WAVE header.");
        if !content_type.is_some_and(|ct| ct.eq_ignore_ascii_case("audio/x-wav")) {
            return Err(bad);
        }
        let (tag, channels, rate, bits) = usp::parse_wav_header(body).ok_or(bad)?;
        if tag != usp::WAVE_PCM || channels != 1 || bits != 16 || !(8000..=48000).contains(&rate) {
            return Err(Violation(1007, "Unsupported audio format: expected mono 16-bit PCM."));
        }
        if let Some(old) = self.turn.take() {
            self.finished.push(old.id);
        }
        let opts = RecOpts {
            sample_rate: rate,
            interim_every_frames: (self.shared.cfg.interim_every_ms / 20).max(1),
            vad_events: true,
            speech_final: true,
            hangover_frames: (self.opts.segmentation_ms / 20).max(1),
            utterance_end_ms: Some(self.shared.cfg.end_silence_ms),
            punctuate: true,
        };
        self.shared.turns.fetch_add(1, Ordering::Relaxed);
        self.turn = Some(Turn {
            id: id.to_string(),
            rec: Recognizer::new(opts, self.shared.cfg.catalog.clone()),
            bytes_per_s: u64::from(rate) * 2,
            bytes: 0,
            in_speech: false,
            odd: None,
        });
        let tag = usp::new_id().to_ascii_uppercase();
        self.push(Instant::now(), "turn.start", id, &json!({"context": {"serviceTag": tag}}).to_string());
        match body.get(44..) {
            Some(pcm) if !pcm.is_empty() => self.audio(pcm),
            _ => Ok(()),
        }
    }

    fn audio(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        let Some(turn) = self.turn.as_mut() else { return Ok(()) };
        turn.bytes += bytes.len() as u64;
        self.shared.audio_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.audio_ms += bytes.len() as u64 * 1000 / turn.bytes_per_s.max(1);
        decode_l16(bytes, &mut turn.odd, &mut self.pcm);
        turn.rec.push(&self.pcm, &mut self.out);
        self.schedule();
        if self.shared.cfg.fail_after_audio_ms.is_some_and(|limit| self.audio_ms >= limit) {
            return Err(Violation(1011, "Internal service error."));
        }
        Ok(())
    }

    /// End of audio: pending results go out now, then the turn closes.
    fn end_turn(&mut self) {
        let Some(mut turn) = self.turn.take() else { return };
        turn.rec.flush(&mut self.out);
        self.turn = Some(turn);
        self.schedule();
        let Some(turn) = self.turn.take() else { return };
        let now = Instant::now();
        self.outbox.iter_mut().for_each(|(due, _)| *due = (*due).min(now));
        if turn.in_speech {
            let end = ticks(turn.bytes as f64 / turn.bytes_per_s.max(1) as f64);
            self.push(now, "speech.endDetected", &turn.id, &json!({"Offset": end}).to_string());
        }
        self.push(now, "turn.end", &turn.id, "");
        self.finished.push(turn.id);
    }

    /// Render recognizer output: phrases after the service's delay, everything else now.
    fn schedule(&mut self) {
        let now = Instant::now();
        let mut out = std::mem::take(&mut self.out);
        for o in out.drain(..) {
            let Some(turn) = self.turn.as_mut() else { break };
            let id = turn.id.clone();
            match o {
                Out::SpeechStarted { at_s } if !turn.in_speech => {
                    turn.in_speech = true;
                    self.push(now, "speech.startDetected", &id, &json!({"Offset": ticks(at_s)}).to_string());
                }
                Out::SpeechStarted { .. } => {}
                Out::Interim(hyp) => {
                    let (offset, duration) = span(&hyp);
                    let body = json!({"Text": lexical(&hyp), "Offset": offset, "Duration": duration});
                    self.push(now, "speech.hypothesis", &id, &body.to_string());
                }
                Out::Final { hyp, delay, .. } if !hyp.transcript.is_empty() => {
                    let due = if delay { now + self.shared.cfg.final_delay } else { now };
                    let body = phrase(&hyp, self.opts.detailed);
                    self.push(due, "speech.phrase", &id, &body);
                }
                Out::Final { .. } => {}
                Out::UtteranceEnd { last_word_end_s } => {
                    turn.in_speech = false;
                    self.push(now, "speech.endDetected", &id, &json!({"Offset": ticks(last_word_end_s)}).to_string());
                }
            }
        }
        self.out = out;
    }

    /// Queue a service message; due times never go backwards, so order is kept.
    fn push(&mut self, due: Instant, path: &str, id: &str, body: &str) {
        let due = self.outbox.back().map_or(due, |(last, _)| (*last).max(due));
        let mut msg = String::new();
        usp::write_text(&mut msg, path, id, (!body.is_empty()).then_some("application/json; charset=utf-8"), body);
        self.outbox.push_back((due, msg));
    }
}

fn ticks(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 10_000_000.0).round() as u64
    } else {
        0
    }
}

/// Speech span of a result in ticks: its words when known, else its window.
fn span(hyp: &Hyp) -> (u64, u64) {
    let start = hyp.words.first().map_or(hyp.start_s, |w| w.start_s);
    let end = hyp.words.last().map_or(hyp.end_s, |w| w.end_s);
    (ticks(start), ticks(end).saturating_sub(ticks(start)))
}

/// The recognizer's lexical form: lower case, no punctuation (hypotheses and `Lexical`).
fn lexical(hyp: &Hyp) -> String {
    if hyp.words.is_empty() {
        return hyp.transcript.clone();
    }
    hyp.words.iter().map(|w| bare(&w.punctuated)).collect::<Vec<_>>().join(" ")
}

fn phrase(hyp: &Hyp, detailed: bool) -> String {
    let (offset, duration) = span(hyp);
    if !detailed {
        return json!({"RecognitionStatus": "Success", "Offset": offset, "Duration": duration, "DisplayText": hyp.transcript})
            .to_string();
    }
    let lex = lexical(hyp);
    json!({
        "RecognitionStatus": "Success",
        "Offset": offset,
        "Duration": duration,
        "DisplayText": hyp.transcript,
        "NBest": [{"Confidence": 0.93, "Lexical": lex, "ITN": lex, "MaskedITN": lex, "Display": hyp.transcript}],
    })
    .to_string()
}

/// Little-endian linear16 into `pcm` (reused), carrying an odd trailing byte to the next message.
fn decode_l16(bytes: &[u8], odd: &mut Option<u8>, pcm: &mut Vec<i16>) {
    pcm.clear();
    let mut rest = bytes;
    if let (Some(lo), Some((&hi, tail))) = (*odd, bytes.split_first()) {
        pcm.push(i16::from_le_bytes([lo, hi]));
        *odd = None;
        rest = tail;
    }
    let mut pairs = rest.chunks_exact(2);
    pcm.extend((&mut pairs).map(|p| match p {
        [lo, hi] => i16::from_le_bytes([*lo, *hi]),
        _ => 0,
    }));
    if let [b] = pairs.remainder() {
        *odd = Some(*b);
    }
}
