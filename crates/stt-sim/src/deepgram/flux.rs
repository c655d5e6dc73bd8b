//! Deepgram Flux (`/v2/listen`, protocols/stt.md B2) on the Deepgram simulator's port: the same
//! key check as v1, then `Connected` and turn-based `TurnInfo` events whose `sequence_id` counts
//! every server message. Turns come from the shared recognizer: speech start → `StartOfTurn`,
//! interim hypotheses → `Update` (cumulative turn text), end of speech → (`EagerEndOfTurn` when
//! `eager_eot_threshold` is set, then) `EndOfTurn`. `TurnResumed` is never produced.

use super::{json, INTERIM_EVERY_MS};
use crate::audio::{ms, Listener};
use crate::recognizer::{Hyp, Out, RecOpts};
use crate::SimConfig;
use serde_json::{json, Value};
use simkit::{Flow, Message, Outbox, Protocol, Request, Stats};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// What a `/v2/listen` query asked for.
#[derive(Debug, Clone)]
pub struct FluxOpts {
    rec: RecOpts,
    /// `eager_eot_threshold` was given: each end of turn is announced early.
    eager: bool,
    eot_threshold: f64,
    eot_timeout_ms: u32,
}

/// `/v2/listen` query checks, refused like v1 (HTTP 400 with Deepgram's error body).
pub(super) fn query(req: &Request) -> Result<FluxOpts, (u16, String)> {
    let bad = |msg: &str| (400, json::http_error("Bad Request", msg));
    let (mut model, mut encoding, mut sample_rate) = (None, None, None);
    let (mut eager, mut eot_threshold, mut eot_timeout_ms) = (None, 0.7, 5000);
    for (k, v) in req.query_pairs() {
        let num = |what: &str| v.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| bad(what));
        match k.as_str() {
            "model" => model = Some(v.clone()),
            "encoding" => encoding = Some(v.clone()),
            "sample_rate" => sample_rate = Some(json::sample_rate(&v).ok_or_else(|| bad(json::BAD_RATE))?),
            "eot_threshold" => eot_threshold = num("eot_threshold must be between 0 and 1")?,
            "eager_eot_threshold" => eager = Some(num("eager_eot_threshold must be between 0 and 1")?),
            "eot_timeout_ms" => eot_timeout_ms = v.parse().map_err(|_| bad("eot_timeout_ms must be milliseconds"))?,
            _ => {}
        }
    }
    if !model.as_deref().is_some_and(|m| m.starts_with("flux-")) {
        return Err(bad("model must be a Flux model, e.g. flux-general-en"));
    }
    if eager.is_some_and(|e| e > eot_threshold) {
        return Err(bad("eager_eot_threshold must not exceed eot_threshold"));
    }
    let sample_rate = json::linear16(encoding.as_deref(), sample_rate).map_err(bad)?;
    Ok(FluxOpts {
        rec: RecOpts {
            sample_rate,
            interim_every_frames: (INTERIM_EVERY_MS / 20).max(1),
            vad_events: true,
            speech_final: true,
            hangover_frames: 15,
            utterance_end_ms: None,
            punctuate: true,
        },
        eager: eager.is_some(),
        eot_threshold,
        eot_timeout_ms,
    })
}

/// Client control messages (text frames).
#[derive(serde::Deserialize)]
#[serde(tag = "type")]
enum Control {
    CloseStream,
    Configure {
        #[serde(default)]
        thresholds: Option<Value>,
        #[serde(default)]
        keyterms: Option<Value>,
    },
}

/// Per-connection identity and counters every message carries.
struct Turns {
    request_id: String,
    sequence_id: u64,
    turn_index: u64,
    turn_start_s: f64,
}

impl Turns {
    fn next_seq(&mut self) -> u64 {
        let s = self.sequence_id;
        self.sequence_id += 1;
        s
    }

    fn connected(&mut self) -> String {
        json!({"type": "Connected", "request_id": self.request_id, "sequence_id": self.next_seq()}).to_string()
    }

    fn turn_info(&mut self, event: &str, hyp: Option<&Hyp>, at_s: f64, eot_confidence: f64) -> String {
        let (transcript, words, end_s) = match hyp {
            Some(h) => (
                h.transcript.as_str(),
                h.words.iter().map(|w| json!({"word": w.punctuated, "confidence": 0.98})).collect(),
                h.end_s,
            ),
            None => ("", Vec::new(), at_s),
        };
        json!({
            "type": "TurnInfo",
            "request_id": self.request_id,
            "sequence_id": self.next_seq(),
            "event": event,
            "turn_index": self.turn_index,
            "audio_window_start": ms(self.turn_start_s),
            "audio_window_end": ms(end_s),
            "transcript": transcript,
            "words": words,
            "end_of_turn_confidence": eot_confidence,
        })
        .to_string()
    }

    fn error(&mut self, code: &str, description: &str) -> String {
        json!({"type": "Error", "sequence_id": self.next_seq(), "code": code, "description": description}).to_string()
    }
}

/// One Flux stream.
pub(super) struct Flux {
    opts: FluxOpts,
    turns: Turns,
    listen: Listener,
    idle: Option<Duration>,
}

impl Flux {
    pub(super) fn new(opts: FluxOpts, cfg: &SimConfig, idle: Option<Duration>, stats: Arc<Stats>) -> Self {
        let turns = Turns { request_id: Uuid::new_v4().to_string(), sequence_id: 0, turn_index: 0, turn_start_s: 0.0 };
        Self { listen: Listener::new(opts.rec.clone(), cfg, stats), opts, turns, idle }
    }
}

impl Protocol for Flux {
    fn on_open(&mut self, out: &mut Outbox) {
        out.now(self.turns.connected());
    }

    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        match msg {
            Message::Binary(bytes) => {
                let failed = self.listen.audio(&bytes);
                schedule(&mut self.listen, out, &mut self.turns, &self.opts);
                if failed {
                    out.now(self.turns.error("INTERNAL_SERVER_ERROR", "The stream failed; please reconnect."));
                    return Flow::close(1011, "INTERNAL_SERVER_ERROR");
                }
                Flow::Active
            }
            Message::Text(text) => match serde_json::from_str::<Control>(&text) {
                Ok(Control::CloseStream) => {
                    self.listen.flush();
                    schedule(&mut self.listen, out, &mut self.turns, &self.opts);
                    Flow::close(1000, "")
                }
                Ok(Control::Configure { thresholds, keyterms }) => {
                    let thresholds = thresholds.unwrap_or_else(|| {
                        json!({"eot_threshold": self.opts.eot_threshold, "eot_timeout_ms": self.opts.eot_timeout_ms})
                    });
                    let ack = json!({
                        "type": "ConfigureSuccess", "request_id": self.turns.request_id, "thresholds": thresholds,
                        "keyterms": keyterms.unwrap_or_else(|| json!([])), "sequence_id": self.turns.next_seq(),
                    });
                    out.now(ack.to_string());
                    Flow::Continue
                }
                Err(_) => super::undecodable("flux"),
            },
            _ => Flow::Continue,
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }

    fn on_idle(&mut self, out: &mut Outbox) -> Flow {
        super::idle_close(out)
    }
}

/// Render recognizer output as TurnInfo events: end of turn after the final delay, the rest now.
fn schedule(listen: &mut Listener, outbox: &mut Outbox, turns: &mut Turns, opts: &FluxOpts) {
    for (due, o) in listen.results(false) {
        match o {
            Out::SpeechStarted { at_s } => {
                turns.turn_start_s = at_s;
                outbox.push(due, turns.turn_info("StartOfTurn", None, at_s, 0.01));
            }
            Out::Interim(hyp) => outbox.push(due, turns.turn_info("Update", Some(&hyp), hyp.end_s, 0.05)),
            Out::Final { hyp, .. } if hyp.transcript.is_empty() => {}
            Out::Final { hyp, .. } => {
                if opts.eager {
                    let eager = turns.turn_info("EagerEndOfTurn", Some(&hyp), hyp.end_s, opts.eot_threshold * 0.8);
                    outbox.push(Instant::now(), eager);
                }
                outbox.push(due, turns.turn_info("EndOfTurn", Some(&hyp), hyp.end_s, opts.eot_threshold.max(0.9)));
                turns.turn_index += 1;
            }
            Out::UtteranceEnd { .. } => {}
        }
    }
}
