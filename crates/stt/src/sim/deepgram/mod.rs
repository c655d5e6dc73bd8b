//! Deepgram live v1 simulator (protocols/stt.md B1) on a loopback port: real WebSocket, real
//! auth check, VAD-driven interim/final results labelled from a [`Catalog`].
//! `/v2/listen` serves Flux (turn-based `TurnInfo`) behind the same key check, see [`flux`].

mod conn;
mod flux;
mod json;

use super::{Catalog, SimKeys};
use crate::sim::recognizer::RecOpts;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_util::sync::CancellationToken;
use url::Url;

/// A client that opens TCP but never sends its upgrade request is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Behaviour knobs; defaults are close to the real service.
#[derive(Debug, Clone)]
pub struct DeepgramSimConfig {
    /// Accepted API keys (`Authorization: Token <key>`); tests may add keys while running.
    pub keys: SimKeys,
    /// From detected end of speech to the endpointed final result.
    pub final_delay: Duration,
    /// Audio between interim results while speech is ongoing.
    pub interim_every_ms: u64,
    /// What the simulator can "recognize"; anything else is `[speech N.N s]`.
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio on a stream, close 1011 `NET-0000`.
    pub fail_after_audio_ms: Option<u64>,
    /// No audio and no KeepAlive for this long closes 1011 `NET-0001` (Deepgram: 10 s).
    pub idle_timeout: Duration,
    /// `Metadata.duration` as a percentage of the audio received (100: exactly what was sent).
    pub billed_pct: u32,
}

impl Default for DeepgramSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            final_delay: Duration::from_millis(300),
            interim_every_ms: 400,
            catalog: Arc::new(Catalog::empty()),
            fail_after_audio_ms: None,
            idle_timeout: Duration::from_secs(10),
            billed_pct: 100,
        }
    }
}

/// A running simulator; stops (listener and every connection) on drop.
pub struct DeepgramSim {
    addr: SocketAddr,
    base_url: Url,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// State the accept loop, connections and test inspection share.
struct Shared {
    cfg: DeepgramSimConfig,
    seen_keys: Mutex<Vec<String>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
    audio_bytes: AtomicU64,
}

impl DeepgramSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: DeepgramSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound (a standalone sim process on a fixed port).
    pub async fn start_on(listener: TcpListener, cfg: DeepgramSimConfig) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("ws://{addr}")).map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            cfg,
            seen_keys: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            audio_bytes: AtomicU64::new(0),
        });
        let stop = CancellationToken::new();
        let conn_shared = shared.clone();
        tokio::spawn(simkit::accept_loop(listener, "deepgram", stop.clone(), move |stream, stop| {
            serve(stream, conn_shared.clone(), stop)
        }));
        Ok(Self { addr, base_url, shared, stop })
    }

    /// `ws://127.0.0.1:PORT`, to pass as the adapter's base URL.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accepted keys; add to them while running.
    pub fn keys(&self) -> &SimKeys {
        &self.shared.cfg.keys
    }

    /// The key each accepted connection used, in order. Test inspection only; never logged.
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// WebSocket connections accepted since start.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// WebSocket connections currently open.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Audio bytes received over all connections.
    pub fn audio_bytes_received(&self) -> u64 {
        self.shared.audio_bytes.load(Ordering::Relaxed)
    }
}

impl simkit::RunningSim for DeepgramSim {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }
    fn seen_keys(&self) -> Vec<String> {
        DeepgramSim::seen_keys(self)
    }
}

/// Registry entry: a Deepgram simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning, catalog: Arc<Catalog>) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = DeepgramSim::start(DeepgramSimConfig {
            keys,
            final_delay: t.stt_final,
            catalog,
            fail_after_audio_ms: t.stt_fail_after_audio_ms,
            billed_pct: t.stt_billed_pct,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

impl Drop for DeepgramSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
    let mut accepted = None;
    #[allow(clippy::result_large_err)] // the shape tungstenite's `Callback` requires
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        accepted = Some(check_upgrade(req, &shared).map_err(|(status, body)| reject(status, body))?);
        Ok(resp)
    };
    let ws = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_hdr_async(stream, callback)) => match r {
            Ok(Ok(ws)) => ws,
            Err(_) => return,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "deepgram sim: handshake ended");
                return;
            }
        },
    };
    let Some((route, key)) = accepted else {
        return;
    };
    if let Ok(mut seen) = shared.seen_keys.lock() {
        seen.push(key);
    }
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    shared.open.fetch_add(1, Ordering::Relaxed);
    match route {
        Route::V1 { opts, model } => conn::run(ws, opts, model, &shared, stop).await,
        Route::Flux(opts) => flux::run(ws, opts, &shared, stop).await,
    }
    shared.open.fetch_sub(1, Ordering::Relaxed);
}

/// Which API an accepted upgrade speaks.
enum Route {
    V1 { opts: RecOpts, model: String },
    Flux(flux::FluxOpts),
}

/// Path, key and query checks, answered like the provider. Errors are the HTTP status and body.
fn check_upgrade(req: &Request, shared: &Shared) -> Result<(Route, String), (StatusCode, String)> {
    let bad = |msg: &str| (StatusCode::BAD_REQUEST, json::http_error("Bad Request", msg));
    let path = req.uri().path();
    if path != "/v1/listen" && path != "/v2/listen" {
        return Err((StatusCode::NOT_FOUND, json::http_error("NOT_FOUND", "Not found.")));
    }
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Token "))
        .map(str::trim)
        .filter(|k| shared.cfg.keys.contains(k))
        .ok_or_else(|| (StatusCode::UNAUTHORIZED, json::http_error("INVALID_AUTH", "Invalid credentials.")))?
        .to_string();
    if path == "/v2/listen" {
        return Ok((Route::Flux(flux::query(req, &shared.cfg)?), key));
    }

    let mut encoding = None;
    let mut sample_rate = None;
    let mut model = "nova-3".to_string();
    let mut opts = RecOpts {
        sample_rate: 0,
        interim_every_frames: 0,
        vad_events: false,
        speech_final: true,
        hangover_frames: 15,
        utterance_end_ms: None,
        punctuate: false,
    };
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "encoding" => encoding = Some(v.into_owned()),
            "sample_rate" => {
                sample_rate = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|r| (8000..=48000).contains(r))
                        .ok_or_else(|| bad("sample_rate must be an integer between 8000 and 48000"))?,
                )
            }
            "channels" if v != "1" => return Err(bad("the simulator supports channels=1 only")),
            "model" => model = v.into_owned(),
            "interim_results" => opts.interim_every_frames = u64::from(v == "true"),
            "vad_events" => opts.vad_events = v == "true",
            "punctuate" | "smart_format" => opts.punctuate |= v == "true",
            "endpointing" => match v.as_ref() {
                "false" => opts.speech_final = false,
                ms => {
                    let ms: u32 = ms.parse().map_err(|_| bad("endpointing must be milliseconds or false"))?;
                    opts.hangover_frames = (ms / 20).max(1);
                }
            },
            "utterance_end_ms" => {
                opts.utterance_end_ms = Some(v.parse().map_err(|_| bad("utterance_end_ms must be milliseconds"))?)
            }
            _ => {}
        }
    }
    match encoding.as_deref() {
        Some("linear16") => {}
        Some(_) => return Err(bad("the simulator decodes encoding=linear16 only")),
        None => return Err(bad("raw audio needs encoding and sample_rate")),
    }
    opts.sample_rate = sample_rate.ok_or_else(|| bad("raw audio needs encoding and sample_rate"))?;
    if opts.interim_every_frames > 0 {
        opts.interim_every_frames = (shared.cfg.interim_every_ms / 20).max(1);
    }
    Ok((Route::V1 { opts, model }, key))
}

fn reject(status: StatusCode, body: String) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests;
