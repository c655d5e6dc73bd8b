//! xAI streaming TTS simulator (protocols/llm-more.md E3.2) on a loopback port: the
//! `/v1/tts` WebSocket plus `GET /v1/api-key`, the REST call key checks use, on the same port.

mod conn;
mod rest;

use super::SimKeys;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_util::sync::CancellationToken;
use url::Url;

/// Rates the simulator produces with `codec=pcm`.
const RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// Behaviour knobs; defaults are close to a fast real provider.
#[derive(Debug, Clone)]
pub struct XaiSimConfig {
    pub keys: SimKeys,
    /// From the text that triggers a generation to its first audio.
    pub first_audio_delay: Duration,
    /// Audio length per character, so duration follows the text.
    pub ms_per_char: u32,
    /// Fault injection: an `error` message and close 1011 once this many characters are voiced.
    pub fail_after_chars: Option<u64>,
    /// Seconds of audio produced per wall-clock second.
    pub pace: f32,
    /// Target audio length of one `audio.delta`.
    pub piece_ms: u32,
}

impl Default for XaiSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_audio_delay: Duration::from_millis(150),
            ms_per_char: 50,
            fail_after_chars: None,
            pace: 2.0,
            piece_ms: 200,
        }
    }
}

/// A running simulator; stops (listener and every connection) on drop.
pub struct XaiSim {
    base_url: Url,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

pub(super) struct Shared {
    cfg: XaiSimConfig,
    seen_keys: Mutex<Vec<String>>,
    chars_received: AtomicU64,
    open: AtomicUsize,
    accepted: AtomicU64,
}

impl Shared {
    /// Records the presented key and says whether it is accepted.
    fn check_key(&self, key: &str) -> bool {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
        self.cfg.keys.contains(key)
    }
}

impl XaiSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: XaiSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound.
    pub async fn start_on(listener: TcpListener, cfg: XaiSimConfig) -> std::io::Result<Self> {
        let addr: SocketAddr = listener.local_addr()?;
        let base_url = Url::parse(&format!("ws://{addr}")).map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            cfg,
            seen_keys: Mutex::new(Vec::new()),
            chars_received: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
        });
        let stop = CancellationToken::new();
        let conn_shared = shared.clone();
        tokio::spawn(simkit::accept_loop(listener, "xai", stop.clone(), move |stream, stop| {
            serve(stream, conn_shared.clone(), stop)
        }));
        Ok(Self { base_url, shared, stop })
    }

    /// `ws://127.0.0.1:PORT`, to pass as the adapter's base URL.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// The accepted keys; add to them while running.
    pub fn keys(&self) -> &SimKeys {
        &self.shared.cfg.keys
    }

    /// Every key presented, in arrival order. Test inspection only.
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Characters of `text.delta` received.
    pub fn chars_received(&self) -> u64 {
        self.shared.chars_received.load(Ordering::Relaxed)
    }

    /// WebSocket connections currently open.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// WebSocket handshakes completed since start.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl simkit::RunningSim for XaiSim {
    fn base_url(&self) -> Url {
        XaiSim::base_url(self)
    }
    fn seen_keys(&self) -> Vec<String> {
        XaiSim::seen_keys(self)
    }
}

/// Registry entry: an xAI TTS simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = XaiSim::start(XaiSimConfig {
            keys,
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

impl Drop for XaiSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the upgrade request asked for.
pub(super) struct Handshake {
    pub sample_rate: u32,
    pub with_timestamps: bool,
}

async fn serve(stream: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
    match rest::is_upgrade(&stream).await {
        Ok(true) => {}
        Ok(false) => return rest::answer(stream, &shared).await,
        Err(_) => return,
    }
    let mut hs = None;
    #[allow(clippy::result_large_err)] // the shape tungstenite's `Callback` requires
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        hs = Some(check_upgrade(req, &shared).map_err(|(status, body)| reject(status, body))?);
        Ok(resp)
    };
    let ws = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio_tungstenite::accept_hdr_async(stream, callback) => match r {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "xai sim: handshake ended");
                return;
            }
        },
    };
    let Some(hs) = hs else { return };
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    shared.open.fetch_add(1, Ordering::Relaxed);
    conn::run(ws, hs, &shared, stop).await;
    shared.open.fetch_sub(1, Ordering::Relaxed);
}

/// xAI's bad-key body (HTTP 400, not 401), with the key shortened as xAI does.
pub(super) fn bad_key_body(key: &str) -> String {
    let head: String = key.chars().take(2).collect();
    let tail: String = key.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
    serde_json::json!({
        "code": "Client specified an invalid argument",
        "error": format!("Incorrect API key provided: {head}***{tail}. You can obtain an API key from https://console.x.ai."),
    })
    .to_string()
}

fn invalid(message: &str) -> (StatusCode, String) {
    let body = serde_json::json!({"code": "Client specified an invalid argument", "error": message});
    (StatusCode::BAD_REQUEST, body.to_string())
}

fn check_upgrade(req: &Request, shared: &Shared) -> Result<Handshake, (StatusCode, String)> {
    if req.uri().path() != "/v1/tts" {
        let body = serde_json::json!({"code": "Not found", "error": "No handler found for this path"});
        return Err((StatusCode::NOT_FOUND, body.to_string()));
    }
    let bearer =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(key) = bearer else {
        return Err((
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"code": "Unauthenticated", "error": "Missing API key"}).to_string(),
        ));
    };
    if !shared.check_key(key) {
        return Err((StatusCode::BAD_REQUEST, bad_key_body(key)));
    }
    let (mut voice, mut language) = (None, None);
    let (mut sample_rate, mut with_timestamps) = (24000, false);
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "voice" => voice = Some(v.to_string()),
            "language" => language = Some(v.to_string()),
            "codec" if v != "pcm" => return Err(invalid("the simulator produces codec=pcm only")),
            "sample_rate" => {
                sample_rate =
                    v.parse().ok().filter(|r| RATES.contains(r)).ok_or_else(|| invalid("unsupported sample_rate"))?
            }
            "with_timestamps" => with_timestamps = v == "true",
            _ => {}
        }
    }
    if voice.is_none_or(|v| v.is_empty()) {
        return Err(invalid("voice is required"));
    }
    if language.is_none_or(|l| l.is_empty()) {
        return Err(invalid("language is required (a BCP-47 code or auto)"));
    }
    Ok(Handshake { sample_rate, with_timestamps })
}

fn reject(status: StatusCode, body: String) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
