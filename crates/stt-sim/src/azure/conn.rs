//! One simulated USP connection: validate every message like the service, run the recognizer
//! per turn, and send turn.start / speech.* / turn.end in order, each no earlier than its due time.

use super::{AzureSttSim, END_SILENCE_MS, INTERIM_EVERY_MS};
use crate::audio::Pcm;
use crate::recognizer::{bare, Hyp, Out, RecOpts, Recognizer};
use serde_json::json;
use simkit::{Flow, Message, Outbox, Protocol, Stats};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use usp::Headers;

/// What the upgrade request asked for.
pub struct Opts {
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
    pcm: Pcm,
}

pub(super) struct Conn {
    sim: Arc<AzureSttSim>,
    stats: Arc<Stats>,
    opts: Opts,
    turn: Option<Turn>,
    /// Request ids whose turn ended; reusing one is a protocol violation.
    finished: Vec<String>,
    out: Vec<Out>,
    audio_ms: u64,
}

impl Conn {
    pub(super) fn new(sim: Arc<AzureSttSim>, opts: Opts, stats: Arc<Stats>) -> Self {
        Self { sim, stats, opts, turn: None, finished: Vec::new(), out: Vec::new(), audio_ms: 0 }
    }
}

impl Protocol for Conn {
    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        let result = match msg {
            Message::Text(t) => self.on_text(&t),
            Message::Binary(b) => self.on_binary(&b, out),
            _ => Ok(()),
        };
        match result {
            Ok(()) => Flow::Active,
            Err(Violation(code, reason)) => Flow::close(code, reason),
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.sim.cfg.idle_timeout
    }
}

/// `Path` and a well-formed `X-RequestId`, or the 1002 close the service answers without them.
fn required<'a>(h: &Headers<'a>) -> Result<(&'a str, &'a str), Violation> {
    h.required().map_err(|reason| Violation(1002, reason))
}

impl Conn {
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

    fn on_binary(&mut self, frame: &[u8], out: &mut Outbox) -> Result<(), Violation> {
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
            return self.begin_turn(id, h.content_type, body, out);
        }
        if body.is_empty() {
            self.end_turn(out);
            return Ok(());
        }
        self.audio(body, out)
    }

    /// The first audio message of a request must carry the RIFF header of the stream.
    fn begin_turn(
        &mut self,
        id: &str,
        content_type: Option<&str>,
        body: &[u8],
        out: &mut Outbox,
    ) -> Result<(), Violation> {
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
            interim_every_frames: (INTERIM_EVERY_MS / 20).max(1),
            vad_events: true,
            speech_final: true,
            hangover_frames: (self.opts.segmentation_ms / 20).max(1),
            utterance_end_ms: Some(END_SILENCE_MS),
            punctuate: true,
        };
        self.sim.turns.fetch_add(1, Ordering::Relaxed);
        self.turn = Some(Turn {
            id: id.to_string(),
            rec: Recognizer::new(opts, self.sim.cfg.catalog.clone()),
            bytes_per_s: u64::from(rate) * 2,
            bytes: 0,
            in_speech: false,
            pcm: Pcm::default(),
        });
        let tag = usp::new_id().to_ascii_uppercase();
        push(out, Instant::now(), "turn.start", id, &json!({"context": {"serviceTag": tag}}).to_string());
        match body.get(44..) {
            Some(pcm) if !pcm.is_empty() => self.audio(pcm, out),
            _ => Ok(()),
        }
    }

    fn audio(&mut self, bytes: &[u8], out: &mut Outbox) -> Result<(), Violation> {
        let Some(turn) = self.turn.as_mut() else { return Ok(()) };
        turn.bytes += bytes.len() as u64;
        self.stats.received(bytes.len());
        self.audio_ms += bytes.len() as u64 * 1000 / turn.bytes_per_s.max(1);
        turn.rec.push(turn.pcm.decode(bytes), &mut self.out);
        self.schedule(out);
        if self.sim.cfg.fail_after_audio_ms.is_some_and(|limit| self.audio_ms >= limit) {
            return Err(Violation(1011, "Internal service error."));
        }
        Ok(())
    }

    /// End of audio: pending results go out now, then the turn closes.
    fn end_turn(&mut self, out: &mut Outbox) {
        let Some(mut turn) = self.turn.take() else { return };
        turn.rec.flush(&mut self.out);
        self.turn = Some(turn);
        self.schedule(out);
        let Some(turn) = self.turn.take() else { return };
        let now = Instant::now();
        out.release_all(now);
        if turn.in_speech {
            let end = ticks(turn.bytes as f64 / turn.bytes_per_s.max(1) as f64);
            push(out, now, "speech.endDetected", &turn.id, &json!({"Offset": end}).to_string());
        }
        push(out, now, "turn.end", &turn.id, "");
        self.finished.push(turn.id);
    }

    /// Render recognizer output: phrases after the service's delay, everything else now.
    fn schedule(&mut self, outbox: &mut Outbox) {
        let now = Instant::now();
        let mut out = std::mem::take(&mut self.out);
        for o in out.drain(..) {
            let Some(turn) = self.turn.as_mut() else { break };
            let id = turn.id.clone();
            match o {
                Out::SpeechStarted { at_s } if !turn.in_speech => {
                    turn.in_speech = true;
                    push(outbox, now, "speech.startDetected", &id, &json!({"Offset": ticks(at_s)}).to_string());
                }
                Out::SpeechStarted { .. } => {}
                Out::Interim(hyp) => {
                    let (offset, duration) = span(&hyp);
                    let body = json!({"Text": lexical(&hyp), "Offset": offset, "Duration": duration});
                    push(outbox, now, "speech.hypothesis", &id, &body.to_string());
                }
                Out::Final { hyp, delay, .. } if !hyp.transcript.is_empty() => {
                    let due = if delay { now + self.sim.cfg.final_delay } else { now };
                    let body = phrase(&hyp, self.opts.detailed);
                    push(outbox, due, "speech.phrase", &id, &body);
                }
                Out::Final { .. } => {}
                Out::UtteranceEnd { last_word_end_s } => {
                    turn.in_speech = false;
                    push(
                        outbox,
                        now,
                        "speech.endDetected",
                        &id,
                        &json!({"Offset": ticks(last_word_end_s)}).to_string(),
                    );
                }
            }
        }
        self.out = out;
    }
}

/// Queue a service message.
fn push(out: &mut Outbox, due: Instant, path: &str, id: &str, body: &str) {
    let mut msg = String::new();
    usp::write_text(&mut msg, path, id, (!body.is_empty()).then_some("application/json; charset=utf-8"), body);
    out.push(due, msg);
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
