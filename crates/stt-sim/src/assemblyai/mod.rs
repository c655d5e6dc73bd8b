//! AssemblyAI Universal Streaming v3 simulator (protocols/stt.md B3) on a loopback port.
//!
//! Checks what the provider checks: path `/v3/ws`, the raw key in `Authorization` (a bad key
//! is accepted at the upgrade, then closed 1008 "Unauthorized connection: …"), the query
//! (`sample_rate`, `encoding`, `speech_model`), and 50–1000 ms of audio per message (else
//! `Error` 3007 and close 3007). Sends `Begin`, cumulative `Turn` partials from the shared
//! recognizer, an `end_of_turn` turn (plus its formatted copy with `format_turns=true`),
//! honours `ForceEndpoint`, and answers `Terminate` with `Termination` and close 1000.

#[cfg(test)]
mod tests;

use crate::audio::{to_ms, Listener};
use crate::recognizer::{bare, Hyp, Out, RecOpts};
use serde_json::json;
use simkit::{Flow, Message, Outbox, Protocol, Reply, Request, Route, Service, Stats, Ws};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Audio between partial turns while speech is ongoing.
const INTERIM_EVERY_MS: u64 = 400;
/// Silence that ends a turn unless the query's `min_turn_silence` says otherwise.
const TURN_SILENCE_MS: u32 = 400;

simulator!(
    /// The AssemblyAI simulator (`/v3/ws`).
    AssemblyAiSim
);

/// The outcome of the upgrade checks that AssemblyAI reports after the upgrade, in-band.
pub enum Session {
    Unauthorized,
    BadQuery(String),
    Ok { key: String, rec: RecOpts, format_turns: bool },
}

impl Service for AssemblyAiSim {
    type Session = Session;
    const NAME: &'static str = "assemblyai";

    fn route(&self, req: &Request, _: &Stats) -> Route<Session> {
        if req.path != "/v3/ws" {
            return Route::Reply(Reply::json(404, json!({"error": "Not Found"}).to_string()));
        }
        let key = req.header("authorization").map(str::trim);
        let Some(key) = key.filter(|k| !k.is_empty() && self.cfg.keys.contains(k)) else {
            return Route::Upgrade(Session::Unauthorized);
        };
        Route::Upgrade(match session(req) {
            Ok((rec, format_turns)) => Session::Ok { key: key.to_string(), rec, format_turns },
            Err(msg) => Session::BadQuery(msg),
        })
    }

    async fn serve(self: Arc<Self>, mut ws: Ws, session: Session, stats: Arc<Stats>, stop: CancellationToken) {
        // Upgrades refused in-band count as connections too.
        let _open = stats.open();
        let mut p = match session {
            Session::Unauthorized => {
                simkit::close(&mut ws, 1008, "Unauthorized connection: Invalid API key").await;
                return;
            }
            Session::BadQuery(msg) => {
                let mut out = Outbox::default();
                if let Flow::Close(code, reason) = fail(&mut out, 3006, &format!("Invalid query parameter: {msg}")) {
                    if out.send_all(&mut ws).await.is_ok() {
                        simkit::close(&mut ws, code, &reason).await;
                    }
                }
                return;
            }
            Session::Ok { key, rec, format_turns } => {
                stats.saw_key(&key);
                Conn {
                    turns: Turns { turn_order: 0, format: format_turns },
                    listen: Listener::new(rec, &self.cfg, stats.clone()),
                    started: Instant::now(),
                    idle: self.cfg.idle_timeout,
                }
            }
        };
        simkit::run(&mut ws, &mut p, &stop).await;
    }
}

/// Query checks; `Err` is the in-band refusal's text.
fn session(req: &Request) -> Result<(RecOpts, bool), String> {
    let mut rec = RecOpts {
        sample_rate: 0,
        interim_every_frames: (INTERIM_EVERY_MS / 20).max(1),
        vad_events: false,
        speech_final: true,
        hangover_frames: (TURN_SILENCE_MS / 20).max(1),
        utterance_end_ms: None,
        punctuate: true,
    };
    let (mut format_turns, mut model) = (false, None);
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "sample_rate" => {
                rec.sample_rate = v
                    .parse::<u32>()
                    .ok()
                    .filter(|r| (8000..=48000).contains(r))
                    .ok_or("Invalid sample_rate: must be an integer between 8000 and 48000")?
            }
            "encoding" if v != "pcm_s16le" => return Err("the simulator decodes encoding=pcm_s16le only".into()),
            "format_turns" => format_turns = v == "true",
            "speech_model" => model = Some(v),
            "min_turn_silence" | "min_end_of_turn_silence_when_confident" => {
                let ms: u32 = v.parse().map_err(|_| format!("Invalid {k}"))?;
                rec.hangover_frames = (ms / 20).max(1);
            }
            _ => {}
        }
    }
    if rec.sample_rate == 0 {
        return Err("sample_rate is required".into());
    }
    match model.as_deref() {
        None | Some("") => return Err("speech_model is required".into()),
        // Universal-3 Pro models also send SpeechStarted.
        Some(m) => rec.vad_events = m.starts_with("u3") || m.starts_with("universal-3"),
    }
    Ok((rec, format_turns))
}

/// One authorized stream.
struct Conn {
    turns: Turns,
    listen: Listener,
    started: Instant,
    idle: Option<Duration>,
}

impl Protocol for Conn {
    fn on_open(&mut self, out: &mut Outbox) {
        let expires_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() + 3 * 3600);
        out.now(json!({"type": "Begin", "id": Uuid::new_v4().to_string(), "expires_at": expires_at}).to_string());
    }

    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        match msg {
            Message::Binary(bytes) => {
                let chunk_ms = self.listen.ms_of(bytes.len());
                if !(50..=1000).contains(&chunk_ms) {
                    let msg = format!("Input duration violation: {chunk_ms} ms. Expected between 50 and 1000 ms");
                    out.clear();
                    return fail(out, 3007, &msg);
                }
                let failed = self.listen.audio(&bytes);
                self.turns.schedule(&mut self.listen, out, false);
                if failed {
                    out.clear();
                    return fail(out, 3005, "Session Cancelled: An error occurred");
                }
                Flow::Active
            }
            Message::Text(text) => match serde_json::from_str::<Control>(&text) {
                Ok(Control::Terminate) => {
                    self.listen.flush();
                    self.turns.schedule(&mut self.listen, out, true);
                    let termination = json!({
                        "type": "Termination",
                        "audio_duration_seconds": self.listen.audio_s().round() as u64,
                        "session_duration_seconds": self.started.elapsed().as_secs_f64().round() as u64,
                    });
                    out.now(termination.to_string());
                    Flow::close(1000, "")
                }
                Ok(Control::ForceEndpoint) => {
                    out.release_all(Instant::now());
                    self.listen.finalize();
                    self.turns.schedule(&mut self.listen, out, true);
                    Flow::Continue
                }
                Ok(Control::KeepAlive | Control::UpdateConfiguration) => Flow::Active,
                Err(_) => {
                    out.clear();
                    fail(out, 3006, "Invalid Message")
                }
            },
            _ => Flow::Continue,
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }
}

/// `Error` immediately before a close with the same code (AssemblyAI's error shape).
fn fail(out: &mut Outbox, code: u16, error: &str) -> Flow {
    out.now(json!({"type": "Error", "error_code": code, "error": error}).to_string());
    // The close reason must fit 123 bytes.
    Flow::Close(code, error.chars().take(100).collect())
}

/// Client control messages (text frames).
#[derive(serde::Deserialize)]
#[serde(tag = "type")]
enum Control {
    Terminate,
    ForceEndpoint,
    KeepAlive,
    UpdateConfiguration,
}

struct Turns {
    turn_order: u64,
    format: bool,
}

impl Turns {
    /// Partials now; the end of a turn after the final delay (at once when `flush`ing).
    fn schedule(&mut self, listen: &mut Listener, outbox: &mut Outbox, flush: bool) {
        for (due, o) in listen.results(flush) {
            match o {
                Out::SpeechStarted { at_s } => outbox.push(
                    due,
                    json!({"type": "SpeechStarted", "timestamp": to_ms(at_s), "confidence": 0.9}).to_string(),
                ),
                Out::Interim(hyp) => outbox.push(due, self.turn(&hyp, false, false)),
                Out::Final { hyp, .. } if hyp.words.is_empty() && hyp.transcript.is_empty() => {}
                Out::Final { hyp, .. } => {
                    outbox.push(due, self.turn(&hyp, true, false));
                    if self.format {
                        outbox.push(due, self.turn(&hyp, true, true));
                    }
                    self.turn_order += 1;
                }
                Out::UtteranceEnd { .. } => {}
            }
        }
    }

    /// A `Turn` message. Partials mark the last word not yet final and leave it out of
    /// `transcript`; the formatted copy carries punctuation and casing.
    fn turn(&self, hyp: &Hyp, end_of_turn: bool, formatted: bool) -> String {
        let n = hyp.words.len();
        let text = |w: &str| if formatted { w.to_string() } else { bare(w) };
        let words: Vec<_> = hyp
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                json!({
                    "start": to_ms(w.start_s),
                    "end": to_ms(w.end_s),
                    "text": text(&w.punctuated),
                    "confidence": 0.95,
                    "word_is_final": end_of_turn || i + 1 < n,
                })
            })
            .collect();
        let transcript = if hyp.words.is_empty() {
            hyp.transcript.clone() // a placeholder for speech the catalog does not know
        } else {
            let fin = if end_of_turn { n } else { n.saturating_sub(1) };
            hyp.words.iter().take(fin).map(|w| text(&w.punctuated)).collect::<Vec<_>>().join(" ")
        };
        json!({
            "type": "Turn",
            "turn_order": self.turn_order,
            "turn_is_formatted": formatted,
            "end_of_turn": end_of_turn,
            "transcript": transcript,
            "end_of_turn_confidence": if end_of_turn { 0.92 } else { 0.02 },
            "utterance": if end_of_turn { transcript.clone() } else { String::new() },
            "words": words,
        })
        .to_string()
    }
}
