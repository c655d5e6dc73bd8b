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

use super::wsconn::{self, Outbox, Pcm, Refusal, Server, Service, Stats, Ws};
use super::{Catalog, SimKeys};
use crate::sim::recognizer::{Hyp, Out, RecOpts, Recognizer};
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
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

/// How long a connection may stay open without sending its config.
const CONFIG_TIMEOUT: Duration = Duration::from_secs(10);

/// Behaviour knobs; defaults are close to the real service.
#[derive(Debug, Clone)]
pub struct SonioxSimConfig {
    /// Accepted API keys.
    pub keys: SimKeys,
    /// From detected end of speech to the final tokens and `<end>`.
    pub final_delay: Duration,
    /// Audio between non-final updates while speech is ongoing.
    pub interim_every_ms: u64,
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio, error 503 "Cannot continue request" and close.
    pub fail_after_audio_ms: Option<u64>,
}

impl Default for SonioxSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            final_delay: Duration::from_millis(300),
            interim_every_ms: 200,
            catalog: Arc::new(Catalog::empty()),
            fail_after_audio_ms: None,
        }
    }
}

/// A running simulator; stops on drop.
pub struct SonioxSim {
    server: Server,
    keys: SimKeys,
}

impl SonioxSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: SonioxSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    pub async fn start_on(listener: TcpListener, cfg: SonioxSimConfig) -> std::io::Result<Self> {
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

    /// WebSocket upgrades accepted (bad keys included: they are refused in-band).
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    pub fn audio_bytes_received(&self) -> u64 {
        self.server.audio_bytes_received()
    }
}

impl simkit::RunningSim for SonioxSim {
    fn base_url(&self) -> Url {
        self.server.base_url()
    }
    fn seen_keys(&self) -> Vec<String> {
        self.server.seen_keys()
    }
}

/// Registry entry: a Soniox simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning, catalog: Arc<Catalog>) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = SonioxSim::start(SonioxSimConfig {
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
    cfg: SonioxSimConfig,
}

impl Service for Sim {
    /// The key sent with the connection, if any.
    type Accepted = Option<String>;
    const NAME: &'static str = "soniox";

    fn upgrade(&self, req: &Request) -> Result<Option<String>, Refusal> {
        if req.uri().path() != "/transcribe-websocket" {
            return Err((StatusCode::NOT_FOUND, json!({"error": "Not Found"}).to_string()));
        }
        Ok(req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|k| k.trim().to_string()))
    }

    fn run(
        self: Arc<Self>,
        ws: Ws,
        header_key: Option<String>,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move { self.serve(ws, header_key, &stats, stop).await }.boxed()
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

impl Sim {
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
            interim_every_frames: (self.cfg.interim_every_ms / 20).max(1),
            vad_events: false,
            speech_final: cfg.enable_endpoint_detection,
            hangover_frames: 15,
            utterance_end_ms: None,
            punctuate: true,
        };
        Ok((key.to_string(), rec))
    }

    async fn serve(&self, mut ws: Ws, header_key: Option<String>, stats: &Stats, stop: CancellationToken) {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(CONFIG_TIMEOUT, ws.next()) => r,
        };
        let text = match first {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Err(_) => return refuse(&mut ws, (408, "request_timeout", "No configuration received.".into())).await,
            Ok(Some(Ok(_))) => {
                return refuse(
                    &mut ws,
                    (400, "invalid_request", "The first message must be the JSON configuration.".into()),
                )
                .await
            }
            Ok(_) => return,
        };
        let checked = serde_json::from_str::<Config>(&text)
            .map_err(|_| (400, "invalid_request", "Invalid JSON configuration.".to_string()))
            .and_then(|cfg| self.check(&cfg, header_key.as_deref()));
        let (key, rec_opts) = match checked {
            Ok(ok) => ok,
            Err(refused) => return refuse(&mut ws, refused).await,
        };
        stats.key_accepted(&key);

        let cfg = &self.cfg;
        let bytes_per_s = u64::from(rec_opts.sample_rate) * 2;
        let mut rec = Recognizer::new(rec_opts, cfg.catalog.clone());
        let mut tokens = Tokens { first: true, final_ms: 0, total_ms: 0 };
        let (mut out, mut outbox, mut l16) = (Vec::new(), Outbox::default(), Pcm::default());
        let mut audio_bytes: u64 = 0;
        let due = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(due);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                msg = ws.next() => match msg {
                    None | Some(Err(_)) => return,
                    Some(Ok(Message::Binary(bytes))) => {
                        audio_bytes += bytes.len() as u64;
                        stats.audio(bytes.len());
                        tokens.total_ms = audio_bytes * 1000 / bytes_per_s.max(1);
                        rec.push(l16.decode(&bytes), &mut out);
                        tokens.schedule(&mut out, &mut outbox, cfg.final_delay);
                        if cfg.fail_after_audio_ms.is_some_and(|limit| tokens.total_ms >= limit) {
                            let msg = "Cannot continue request (code 1). Please restart the request.";
                            return refuse(&mut ws, (503, "service_unavailable", msg.into())).await;
                        }
                    }
                    Some(Ok(Message::Text(text))) if text.is_empty() => {
                        rec.flush(&mut out);
                        tokens.schedule(&mut out, &mut outbox, Duration::ZERO);
                        if outbox.send_all(&mut ws).await.is_err() {
                            return;
                        }
                        let done = json!({
                            "tokens": [], "final_audio_proc_ms": tokens.final_ms,
                            "total_audio_proc_ms": tokens.total_ms, "finished": true,
                        });
                        if ws.send(Message::text(done.to_string())).await.is_ok() {
                            wsconn::close(&mut ws, 1000, "").await;
                        }
                        return;
                    }
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str::<Value>(&text).ok().as_ref().and_then(|v| v["type"].as_str()) {
                            Some("keepalive") => {}
                            Some("finalize") => {
                                outbox.release_all(Instant::now());
                                rec.finalize(&mut out);
                                tokens.schedule(&mut out, &mut outbox, Duration::ZERO);
                            }
                            _ => return refuse(&mut ws, (400, "invalid_request", "Invalid control message.".into())).await,
                        }
                    }
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

/// Soniox's error response, then close.
async fn refuse(ws: &mut Ws, (code, error_type, message): Refused) {
    let msg = json!({
        "tokens": [],
        "error_code": code,
        "error_type": error_type,
        "error_message": message,
        "request_id": Uuid::new_v4().to_string(),
    });
    if ws.send(Message::text(msg.to_string())).await.is_ok() {
        wsconn::close(ws, 1000, "").await;
    }
}

/// Renders recognizer output as token responses.
struct Tokens {
    /// No token sent yet: the first word carries no leading space.
    first: bool,
    final_ms: u64,
    total_ms: u64,
}

impl Tokens {
    fn schedule(&mut self, out: &mut Vec<Out>, outbox: &mut Outbox, final_delay: Duration) {
        let now = Instant::now();
        for o in out.drain(..) {
            match o {
                Out::Interim(hyp) => {
                    let toks = self.words(&hyp, false);
                    outbox.push(now, self.response(toks));
                }
                Out::Final { hyp, speech_final, from_finalize, delay } => {
                    let mut toks = self.words(&hyp, true);
                    let at = wsconn::to_ms(hyp.words.last().map_or(hyp.end_s, |w| w.end_s));
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
                    outbox.push(if delay { now + final_delay } else { now }, self.response(toks));
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
            json!({"text": text, "start_ms": wsconn::to_ms(s), "end_ms": wsconn::to_ms(e), "confidence": 0.97, "is_final": is_final})
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
