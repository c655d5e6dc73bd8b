//! Soniox real-time simulator (protocols/stt.md B6) on a loopback port.
//!
//! Path `/transcribe-websocket`. The first message must be the JSON config; the key comes from
//! `Authorization: Bearer` or, deprecated, the config's `api_key`. Every refusal is in-band like
//! the provider's: `{"tokens":[],"error_code":…,"error_type":…,"error_message":…}` then close.
//! Recognizer hypotheses go out as non-final word tokens (leading space = new word); at end of
//! speech the words go final followed by `<end>` (with `enable_endpoint_detection`), a
//! `finalize` is answered with final tokens and `<fin>`, and the empty text frame ends the
//! stream with `finished:true` and close 1000.

#[cfg(test)]
mod tests;

use crate::audio::{to_ms, Listener};
use crate::recognizer::{Hyp, Out, RecOpts};
use serde_json::{json, Value};
use simkit::{Flow, Message, Outbox, Protocol, Reply, Request, Route, Service, Stats, Ws};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a connection may stay open without sending its config.
const CONFIG_TIMEOUT: Duration = Duration::from_secs(10);
/// Audio between non-final updates while speech is ongoing.
const INTERIM_EVERY_MS: u64 = 200;

simulator!(
    /// The Soniox simulator (`/transcribe-websocket`).
    SonioxSim
);

impl Service for SonioxSim {
    /// The key sent with the connection, if any.
    type Session = Option<String>;
    const NAME: &'static str = "soniox";

    fn route(&self, req: &Request, _: &Stats) -> Route<Option<String>> {
        if req.path != "/transcribe-websocket" {
            return Route::Reply(Reply::json(404, json!({"error": "Not Found"}).to_string()));
        }
        Route::Upgrade(req.header_key("authorization", "Bearer ").map(str::to_string))
    }

    async fn serve(
        self: Arc<Self>,
        mut ws: Ws,
        header_key: Option<String>,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) {
        // Upgrades refused in-band count as connections too.
        let _open = stats.open();
        let mut p = Conn { sim: self.clone(), header_key, stats: stats.clone(), stream: None };
        simkit::run(&mut ws, &mut p, &stop).await;
    }
}

/// The start request, as far as the simulator needs it.
#[derive(serde::Deserialize)]
struct Config {
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    audio_format: Option<String>,
    #[serde(default)]
    sample_rate: Option<u32>,
    #[serde(default)]
    num_channels: Option<u32>,
    #[serde(default)]
    enable_endpoint_detection: bool,
    #[serde(default)]
    max_endpoint_delay_ms: Option<u32>,
}

/// An in-band refusal: status code, `error_type`, message.
type Refused = (u16, &'static str, String);

impl SonioxSim {
    fn check(&self, cfg: &Config, header_key: Option<&str>) -> Result<(String, RecOpts), Refused> {
        let bad = |msg: &str| (400, "invalid_request", msg.to_string());
        let key = header_key.or(cfg.api_key.as_deref()).filter(|k| !k.is_empty() && self.cfg.keys.contains(k));
        let key = key.ok_or((401, "unauthenticated", "Invalid API key.".to_string()))?;
        match cfg.model.as_deref() {
            None => return Err(bad("Missing required field: model")),
            Some(m) if !m.starts_with("stt-rt-") => {
                return Err((400, "model_not_available", "Invalid model specified.".into()))
            }
            Some(_) => {}
        }
        match cfg.audio_format.as_deref() {
            None => return Err(bad("Missing required field: audio_format")),
            Some("pcm_s16le") => {}
            Some(_) => return Err(bad("The simulator decodes audio_format pcm_s16le only.")),
        }
        let sample_rate = cfg
            .sample_rate
            .filter(|r| (8000..=48000).contains(r))
            .ok_or_else(|| bad("sample_rate is required for raw audio formats (8000-48000)."))?;
        if cfg.num_channels != Some(1) {
            return Err(bad("num_channels must be 1 for this simulator."));
        }
        if cfg.max_endpoint_delay_ms.is_some_and(|ms| !(500..=3000).contains(&ms)) {
            return Err(bad("max_endpoint_delay_ms must be between 500 and 3000."));
        }
        let rec = RecOpts {
            sample_rate,
            interim_every_frames: (INTERIM_EVERY_MS / 20).max(1),
            vad_events: false,
            speech_final: cfg.enable_endpoint_detection,
            hangover_frames: 15,
            utterance_end_ms: None,
            punctuate: true,
        };
        Ok((key.to_string(), rec))
    }
}

/// One connection: waiting for its config, then streaming.
struct Conn {
    sim: Arc<SonioxSim>,
    header_key: Option<String>,
    stats: Arc<Stats>,
    stream: Option<(Listener, Tokens)>,
}

impl Conn {
    /// The first message: the JSON configuration, checked like the service checks it.
    fn configure(&mut self, text: &str, out: &mut Outbox) -> Flow {
        let checked = serde_json::from_str::<Config>(text)
            .map_err(|_| (400, "invalid_request", "Invalid JSON configuration.".to_string()))
            .and_then(|cfg| self.sim.check(&cfg, self.header_key.as_deref()));
        match checked {
            Ok((key, rec)) => {
                self.stats.saw_key(&key);
                let tokens = Tokens { first: true, final_ms: 0, total_ms: 0 };
                self.stream = Some((Listener::new(rec, &self.sim.cfg, self.stats.clone()), tokens));
                Flow::Active
            }
            Err(refused) => refuse(out, refused),
        }
    }
}

impl Protocol for Conn {
    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        let Some((listen, tokens)) = self.stream.as_mut() else {
            return match msg {
                Message::Text(text) => self.configure(&text, out),
                _ => refuse(out, (400, "invalid_request", "The first message must be the JSON configuration.".into())),
            };
        };
        match msg {
            Message::Binary(bytes) => {
                let failed = listen.audio(&bytes);
                tokens.total_ms = listen.audio_ms();
                tokens.schedule(listen, out, false);
                if failed {
                    out.clear();
                    let msg = "Cannot continue request (code 1). Please restart the request.";
                    return refuse(out, (503, "service_unavailable", msg.into()));
                }
                Flow::Active
            }
            Message::Text(text) if text.is_empty() => {
                listen.flush();
                tokens.schedule(listen, out, true);
                let done = json!({
                    "tokens": [], "final_audio_proc_ms": tokens.final_ms,
                    "total_audio_proc_ms": tokens.total_ms, "finished": true,
                });
                out.now(done.to_string());
                Flow::close(1000, "")
            }
            Message::Text(text) => {
                match serde_json::from_str::<Value>(&text).ok().as_ref().and_then(|v| v["type"].as_str()) {
                    Some("keepalive") => Flow::Active,
                    Some("finalize") => {
                        out.release_all(Instant::now());
                        listen.finalize();
                        tokens.schedule(listen, out, true);
                        Flow::Continue
                    }
                    _ => {
                        out.clear();
                        refuse(out, (400, "invalid_request", "Invalid control message.".into()))
                    }
                }
            }
            _ => Flow::Continue,
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        match self.stream {
            None => Some(CONFIG_TIMEOUT),
            Some(_) => self.sim.cfg.idle_timeout,
        }
    }

    fn on_idle(&mut self, out: &mut Outbox) -> Flow {
        out.clear();
        match self.stream {
            None => refuse(out, (408, "request_timeout", "No configuration received.".into())),
            Some(_) => refuse(out, (408, "request_timeout", "No audio received.".into())),
        }
    }
}

/// Soniox's error response, then close.
fn refuse(out: &mut Outbox, (code, error_type, message): Refused) -> Flow {
    let msg = json!({
        "tokens": [],
        "error_code": code,
        "error_type": error_type,
        "error_message": message,
        "request_id": Uuid::new_v4().to_string(),
    });
    out.now(msg.to_string());
    Flow::close(1000, "")
}

/// Renders recognizer output as token responses.
struct Tokens {
    /// No token sent yet: the first word carries no leading space.
    first: bool,
    final_ms: u64,
    total_ms: u64,
}

impl Tokens {
    fn schedule(&mut self, listen: &mut Listener, outbox: &mut Outbox, flush: bool) {
        for (due, o) in listen.results(flush) {
            match o {
                Out::Interim(hyp) => {
                    let toks = self.words(&hyp, false);
                    outbox.push(due, self.response(toks));
                }
                Out::Final { hyp, speech_final, from_finalize, .. } => {
                    let mut toks = self.words(&hyp, true);
                    let at = to_ms(hyp.words.last().map_or(hyp.end_s, |w| w.end_s));
                    if speech_final && !toks.is_empty() {
                        toks.push(special("<end>", at));
                    }
                    if from_finalize {
                        toks.push(special("<fin>", at));
                    }
                    if toks.is_empty() {
                        continue;
                    }
                    self.final_ms = self.final_ms.max(at);
                    outbox.push(due, self.response(toks));
                }
                Out::SpeechStarted { .. } | Out::UtteranceEnd { .. } => {}
            }
        }
    }

    /// One token per word; unknown speech is one placeholder token.
    fn words(&mut self, hyp: &Hyp, is_final: bool) -> Vec<Value> {
        let mut toks: Vec<Value> = Vec::with_capacity(hyp.words.len().max(1));
        let piece = |text: &str, s: f64, e: f64, first: &mut bool| {
            let text = if std::mem::take(first) { text.to_string() } else { format!(" {text}") };
            json!({"text": text, "start_ms": to_ms(s), "end_ms": to_ms(e), "confidence": 0.97, "is_final": is_final})
        };
        // Non-final tokens do not consume the stream's first-word slot.
        let mut first = self.first;
        if hyp.words.is_empty() && !hyp.transcript.is_empty() {
            toks.push(piece(&hyp.transcript, hyp.start_s, hyp.end_s, &mut first));
        }
        for w in &hyp.words {
            toks.push(piece(&w.punctuated, w.start_s, w.end_s, &mut first));
        }
        if is_final {
            self.first = first;
        }
        toks
    }

    fn response(&self, tokens: Vec<Value>) -> String {
        json!({"tokens": tokens, "final_audio_proc_ms": self.final_ms, "total_audio_proc_ms": self.total_ms})
            .to_string()
    }
}

fn special(text: &str, at_ms: u64) -> Value {
    json!({"text": text, "start_ms": at_ms, "end_ms": at_ms, "confidence": 1.0, "is_final": true})
}
