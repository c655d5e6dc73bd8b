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

use super::wsconn::{self, query_pairs, Outbox, Pcm, Refusal, Server, Service, Stats, Ws};
use super::{Catalog, SimKeys};
use crate::sim::recognizer::{bare, Hyp, Out, RecOpts, Recognizer};
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::{header, StatusCode};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

/// Behaviour knobs; defaults are close to the real service.
#[derive(Debug, Clone)]
pub struct AssemblyAiSimConfig {
    /// Accepted API keys (raw `Authorization` header).
    pub keys: SimKeys,
    /// From detected end of speech to the end-of-turn message.
    pub final_delay: Duration,
    /// Audio between partial turns while speech is ongoing.
    pub interim_every_ms: u64,
    /// Silence that ends a turn unless the query's `min_turn_silence` says otherwise.
    pub turn_silence_ms: u32,
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio, `Error` 3005 and close 3005.
    pub fail_after_audio_ms: Option<u64>,
}

impl Default for AssemblyAiSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            final_delay: Duration::from_millis(300),
            interim_every_ms: 400,
            turn_silence_ms: 400,
            catalog: Arc::new(Catalog::empty()),
            fail_after_audio_ms: None,
        }
    }
}

/// A running simulator; stops on drop.
pub struct AssemblyAiSim {
    server: Server,
    keys: SimKeys,
}

impl AssemblyAiSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: AssemblyAiSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    pub async fn start_on(listener: TcpListener, cfg: AssemblyAiSimConfig) -> std::io::Result<Self> {
        let keys = cfg.keys.clone();
        Ok(Self { server: Server::start(listener, Arc::new(Sim { cfg })).await?, keys })
    }

    /// `ws://127.0.0.1:PORT`, to pass as the adapter's base URL.
    pub fn base_url(&self) -> Url {
        self.server.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The accepted keys; add to them while running.
    pub fn keys(&self) -> &SimKeys {
        &self.keys
    }

    /// The key of each authenticated session, in order. Test inspection only.
    pub fn seen_keys(&self) -> Vec<String> {
        self.server.seen_keys()
    }

    /// WebSocket upgrades accepted (bad keys included: they are refused after the upgrade).
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    pub fn open_connections(&self) -> usize {
        self.server.open_connections()
    }

    pub fn audio_bytes_received(&self) -> u64 {
        self.server.audio_bytes_received()
    }
}

impl simkit::RunningSim for AssemblyAiSim {
    fn base_url(&self) -> Url {
        self.server.base_url()
    }
    fn seen_keys(&self) -> Vec<String> {
        self.server.seen_keys()
    }
}

/// Registry entry: an AssemblyAI simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning, catalog: Arc<Catalog>) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = AssemblyAiSim::start(AssemblyAiSimConfig {
            keys,
            final_delay: t.stt_final,
            catalog,
            fail_after_audio_ms: t.stt_fail_after_audio_ms,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

struct Sim {
    cfg: AssemblyAiSimConfig,
}

/// The outcome of the upgrade checks that AssemblyAI reports after the upgrade, in-band.
enum Accepted {
    Unauthorized,
    BadQuery(String),
    Ok(Session),
}

struct Session {
    key: String,
    rec: RecOpts,
    format_turns: bool,
}

impl Service for Sim {
    type Accepted = Accepted;
    const NAME: &'static str = "assemblyai";

    fn upgrade(&self, req: &Request) -> Result<Accepted, Refusal> {
        if req.uri().path() != "/v3/ws" {
            return Err((StatusCode::NOT_FOUND, json!({"error": "Not Found"}).to_string()));
        }
        let key = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
        let Some(key) = key.filter(|k| !k.is_empty() && self.cfg.keys.contains(k)) else {
            return Ok(Accepted::Unauthorized);
        };
        Ok(match self.session(req, key) {
            Ok(s) => Accepted::Ok(s),
            Err(msg) => Accepted::BadQuery(msg),
        })
    }

    fn run(
        self: Arc<Self>,
        ws: Ws,
        acc: Accepted,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move { self.serve(ws, acc, &stats, stop).await }.boxed()
    }
}

impl Sim {
    fn session(&self, req: &Request, key: &str) -> Result<Session, String> {
        let mut rec = RecOpts {
            sample_rate: 0,
            interim_every_frames: (self.cfg.interim_every_ms / 20).max(1),
            vad_events: false,
            speech_final: true,
            hangover_frames: (self.cfg.turn_silence_ms / 20).max(1),
            utterance_end_ms: None,
            punctuate: true,
        };
        let (mut format_turns, mut model) = (false, None);
        for (k, v) in query_pairs(req) {
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
        Ok(Session { key: key.to_string(), rec, format_turns })
    }

    async fn serve(&self, mut ws: Ws, acc: Accepted, stats: &Stats, stop: CancellationToken) {
        let s = match acc {
            Accepted::Unauthorized => {
                wsconn::close(&mut ws, 1008, "Unauthorized connection: Invalid API key").await;
                return;
            }
            Accepted::BadQuery(msg) => {
                fail(&mut ws, 3006, &format!("Invalid query parameter: {msg}")).await;
                return;
            }
            Accepted::Ok(s) => s,
        };
        stats.key_accepted(&s.key);
        let cfg = &self.cfg;
        let bytes_per_s = u64::from(s.rec.sample_rate) * 2;
        let mut turns = Turns { turn_order: 0, format: s.format_turns };
        let mut rec = Recognizer::new(s.rec, cfg.catalog.clone());
        let (mut out, mut outbox, mut l16) = (Vec::new(), Outbox::default(), Pcm::default());
        let mut audio_bytes: u64 = 0;
        let started = Instant::now();
        let due = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(due);

        let expires_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() + 3 * 3600);
        let begin = json!({"type": "Begin", "id": Uuid::new_v4().to_string(), "expires_at": expires_at});
        if ws.send(Message::text(begin.to_string())).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                msg = ws.next() => match msg {
                    None | Some(Err(_)) => return,
                    Some(Ok(Message::Binary(bytes))) => {
                        let chunk_ms = bytes.len() as u64 * 1000 / bytes_per_s.max(1);
                        if !(50..=1000).contains(&chunk_ms) {
                            let msg = format!("Input duration violation: {chunk_ms} ms. Expected between 50 and 1000 ms");
                            fail(&mut ws, 3007, &msg).await;
                            return;
                        }
                        audio_bytes += bytes.len() as u64;
                        stats.audio(bytes.len());
                        rec.push(l16.decode(&bytes), &mut out);
                        turns.schedule(&mut out, &mut outbox, cfg.final_delay);
                        if cfg.fail_after_audio_ms.is_some_and(|limit| audio_bytes * 1000 / bytes_per_s.max(1) >= limit) {
                            fail(&mut ws, 3005, "Session Cancelled: An error occurred").await;
                            return;
                        }
                    }
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                        Ok(Control::Terminate) => {
                            rec.flush(&mut out);
                            turns.schedule(&mut out, &mut outbox, Duration::ZERO);
                            if outbox.send_all(&mut ws).await.is_err() {
                                return;
                            }
                            let termination = json!({
                                "type": "Termination",
                                "audio_duration_seconds": (audio_bytes as f64 / bytes_per_s.max(1) as f64).round() as u64,
                                "session_duration_seconds": started.elapsed().as_secs_f64().round() as u64,
                            });
                            if ws.send(Message::text(termination.to_string())).await.is_ok() {
                                wsconn::close(&mut ws, 1000, "").await;
                            }
                            return;
                        }
                        Ok(Control::ForceEndpoint) => {
                            outbox.release_all(Instant::now());
                            rec.finalize(&mut out);
                            turns.schedule(&mut out, &mut outbox, Duration::ZERO);
                        }
                        Ok(Control::KeepAlive | Control::UpdateConfiguration) => {}
                        Err(_) => {
                            fail(&mut ws, 3006, "Invalid Message").await;
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
            }
            if let Some(next) = outbox.next_due() {
                if due.deadline() != next {
                    due.as_mut().reset(next);
                }
            }
        }
    }
}

/// `Error` immediately before a close with the same code (AssemblyAI's error shape).
async fn fail(ws: &mut Ws, code: u16, error: &str) {
    let msg = json!({"type": "Error", "error_code": code, "error": error});
    if ws.send(Message::text(msg.to_string())).await.is_ok() {
        // The close reason must fit 123 bytes.
        let reason: String = error.chars().take(100).collect();
        wsconn::close(ws, code, &reason).await;
    }
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
    /// Partials now; the end of a turn after `final_delay` (flushes pass zero).
    fn schedule(&mut self, out: &mut Vec<Out>, outbox: &mut Outbox, final_delay: Duration) {
        let now = Instant::now();
        for o in out.drain(..) {
            match o {
                Out::SpeechStarted { at_s } => outbox.push(
                    now,
                    json!({"type": "SpeechStarted", "timestamp": wsconn::to_ms(at_s), "confidence": 0.9}).to_string(),
                ),
                Out::Interim(hyp) => outbox.push(now, self.turn(&hyp, false, false)),
                Out::Final { hyp, .. } if hyp.words.is_empty() && hyp.transcript.is_empty() => {}
                Out::Final { hyp, delay, .. } => {
                    let due = if delay { now + final_delay } else { now };
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
                    "start": wsconn::to_ms(w.start_s),
                    "end": wsconn::to_ms(w.end_s),
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
