//! Deepgram Flux (`/v2/listen`, protocols/stt.md B2) on the Deepgram simulator's port: the same
//! key check as v1, then `Connected` and turn-based `TurnInfo` events whose `sequence_id` counts
//! every server message. Turns come from the shared recognizer: speech start → `StartOfTurn`,
//! interim hypotheses → `Update` (cumulative turn text), end of speech → (`EagerEndOfTurn` when
//! `eager_eot_threshold` is set, then) `EndOfTurn`. `TurnResumed` is never produced.

use super::{json, DeepgramSimConfig, Shared};
use crate::sim::recognizer::{Hyp, Out, RecOpts, Recognizer};
use crate::sim::wsconn::{self, Outbox, Pcm, Ws};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::http::{Request, StatusCode};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What a `/v2/listen` query asked for.
#[derive(Debug, Clone)]
pub(super) struct FluxOpts {
    rec: RecOpts,
    /// `eager_eot_threshold` was given: each end of turn is announced early.
    eager: bool,
    eot_threshold: f64,
    eot_timeout_ms: u32,
}

/// `/v2/listen` query checks, refused like v1 (HTTP 400 with Deepgram's error body).
pub(super) fn query<B>(req: &Request<B>, cfg: &DeepgramSimConfig) -> Result<FluxOpts, (StatusCode, String)> {
    let bad = |msg: &str| (StatusCode::BAD_REQUEST, json::http_error("Bad Request", msg));
    let (mut model, mut encoding, mut sample_rate) = (None, None, None);
    let (mut eager, mut eot_threshold, mut eot_timeout_ms) = (None, 0.7, 5000);
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        let num = |what: &str| v.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| bad(what));
        match k.as_ref() {
            "model" => model = Some(v.to_string()),
            "encoding" => encoding = Some(v.to_string()),
            "sample_rate" => {
                sample_rate = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|r| (8000..=48000).contains(r))
                        .ok_or_else(|| bad("sample_rate must be an integer between 8000 and 48000"))?,
                )
            }
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
    match encoding.as_deref() {
        Some("linear16") => {}
        Some(_) => return Err(bad("the simulator decodes encoding=linear16 only")),
        None => return Err(bad("raw audio needs encoding and sample_rate")),
    }
    let sample_rate = sample_rate.ok_or_else(|| bad("raw audio needs encoding and sample_rate"))?;
    Ok(FluxOpts {
        rec: RecOpts {
            sample_rate,
            interim_every_frames: (cfg.interim_every_ms / 20).max(1),
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
            "audio_window_start": wsconn::ms(self.turn_start_s),
            "audio_window_end": wsconn::ms(end_s),
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

pub(super) async fn run(mut ws: Ws, opts: FluxOpts, shared: &Shared, stop: CancellationToken) {
    let cfg = &shared.cfg;
    let bytes_per_s = u64::from(opts.rec.sample_rate) * 2;
    let mut turns = Turns { request_id: Uuid::new_v4().to_string(), sequence_id: 0, turn_index: 0, turn_start_s: 0.0 };
    let mut rec = Recognizer::new(opts.rec.clone(), cfg.catalog.clone());
    let mut out: Vec<Out> = Vec::new();
    let mut outbox = Outbox::default();
    let mut l16 = Pcm::default();
    let mut audio_bytes: u64 = 0;
    let mut last_activity = Instant::now();
    let mut idle_check =
        tokio::time::interval((cfg.idle_timeout / 10).clamp(Duration::from_millis(10), Duration::from_millis(250)));
    idle_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let due = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(due);

    if ws.send(Message::text(turns.connected())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            msg = ws.next() => match msg {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Binary(bytes))) => {
                    last_activity = Instant::now();
                    audio_bytes += bytes.len() as u64;
                    shared.audio_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    rec.push(l16.decode(&bytes), &mut out);
                    schedule(&mut out, &mut outbox, &mut turns, &opts, cfg.final_delay);
                    if cfg.fail_after_audio_ms.is_some_and(|limit| audio_bytes * 1000 / bytes_per_s.max(1) >= limit) {
                        let err = turns.error("INTERNAL_SERVER_ERROR", "The stream failed; please reconnect.");
                        if outbox.send_all(&mut ws).await.is_ok() && ws.send(Message::text(err)).await.is_ok() {
                            wsconn::close(&mut ws, 1011, "INTERNAL_SERVER_ERROR").await;
                        }
                        return;
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::CloseStream) => {
                        rec.flush(&mut out);
                        schedule(&mut out, &mut outbox, &mut turns, &opts, cfg.final_delay);
                        if outbox.send_all(&mut ws).await.is_ok() {
                            wsconn::close(&mut ws, 1000, "").await;
                        }
                        return;
                    }
                    Ok(Control::Configure { thresholds, keyterms }) => {
                        let thresholds = thresholds.unwrap_or_else(|| json!({
                            "eot_threshold": opts.eot_threshold, "eot_timeout_ms": opts.eot_timeout_ms,
                        }));
                        let ack = json!({
                            "type": "ConfigureSuccess", "request_id": turns.request_id, "thresholds": thresholds,
                            "keyterms": keyterms.unwrap_or_else(|| json!([])), "sequence_id": turns.next_seq(),
                        });
                        outbox.push(Instant::now(), ack.to_string());
                    }
                    Err(_) => {
                        tracing::debug!("flux sim: undecodable text frame");
                        wsconn::close(&mut ws, 1008, "DATA-0000").await;
                        return;
                    }
                },
                Some(Ok(Message::Close(_))) => {
                    wsconn::drain(&mut ws).await;
                    return;
                }
                Some(Ok(_)) => {}
            },
            () = &mut due, if outbox.next_due().is_some() => {
                if outbox.send_due(&mut ws).await.is_err() {
                    return;
                }
            },
            _ = idle_check.tick() => {
                if last_activity.elapsed() >= cfg.idle_timeout {
                    wsconn::close(&mut ws, 1011, "NET-0001").await;
                    return;
                }
            },
        }
        if let Some(next) = outbox.next_due() {
            if due.deadline() != next {
                due.as_mut().reset(next);
            }
        }
    }
}

/// Render recognizer output as TurnInfo events: end of turn after `final_delay`, the rest now.
fn schedule(out: &mut Vec<Out>, outbox: &mut Outbox, turns: &mut Turns, opts: &FluxOpts, final_delay: Duration) {
    let now = Instant::now();
    for o in out.drain(..) {
        match o {
            Out::SpeechStarted { at_s } => {
                turns.turn_start_s = at_s;
                outbox.push(now, turns.turn_info("StartOfTurn", None, at_s, 0.01));
            }
            Out::Interim(hyp) => outbox.push(now, turns.turn_info("Update", Some(&hyp), hyp.end_s, 0.05)),
            Out::Final { hyp, .. } if hyp.transcript.is_empty() => {}
            Out::Final { hyp, delay, .. } => {
                if opts.eager {
                    outbox
                        .push(now, turns.turn_info("EagerEndOfTurn", Some(&hyp), hyp.end_s, opts.eot_threshold * 0.8));
                }
                let due = if delay { now + final_delay } else { now };
                outbox.push(due, turns.turn_info("EndOfTurn", Some(&hyp), hyp.end_s, opts.eot_threshold.max(0.9)));
                turns.turn_index += 1;
            }
            Out::UtteranceEnd { .. } => {}
        }
    }
}
