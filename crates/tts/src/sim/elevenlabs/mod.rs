//! ElevenLabs simulator on a loopback port: `stream-input` (protocols/tts.md C1) and the
//! multi-context `multi-stream-input` (C2).

mod buffer;
mod conn;
mod format;
mod multi;

use super::SimKeys;
use format::Format;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_util::sync::CancellationToken;
use url::Url;

/// Behaviour knobs; defaults are close to a fast real provider.
#[derive(Debug, Clone)]
pub struct ElevenLabsSimConfig {
    pub keys: SimKeys,
    /// From a flush or trigger to the first audio of that generation.
    pub first_audio_delay: Duration,
    /// Audio length per character, so duration follows the text.
    pub ms_per_char: u32,
    /// Fault injection: close 1011 once this many characters of a stream have been voiced.
    pub fail_after_chars: Option<u64>,
    /// Close after this long without a client message (query `inactivity_timeout` overrides).
    pub inactivity_timeout: Duration,
    /// Seconds of audio produced per wall-clock second; providers run faster than real time.
    pub pace: f32,
    /// Target audio length of one `audio` message.
    pub piece_ms: u32,
}

impl Default for ElevenLabsSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_audio_delay: Duration::from_millis(150),
            ms_per_char: 50,
            fail_after_chars: None,
            inactivity_timeout: Duration::from_secs(20),
            pace: 2.0,
            piece_ms: 200,
        }
    }
}

/// A running simulator; stops (listener and every connection) on drop.
pub struct ElevenLabsSim {
    addr: SocketAddr,
    base_url: Url,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// State the accept loop, connections and test inspection share.
pub(super) struct Shared {
    cfg: ElevenLabsSimConfig,
    seen_keys: Mutex<Vec<String>>,
    chars_received: AtomicU64,
    open: AtomicUsize,
    accepted: AtomicU64,
    contexts_closed: AtomicU64,
}

impl Shared {
    fn saw_key(&self, key: &str) {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
    }
}

impl ElevenLabsSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: ElevenLabsSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound (a standalone sim process on a fixed port).
    pub async fn start_on(listener: TcpListener, cfg: ElevenLabsSimConfig) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("ws://{addr}")).map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            cfg,
            seen_keys: Mutex::new(Vec::new()),
            chars_received: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            contexts_closed: AtomicU64::new(0),
        });
        let stop = CancellationToken::new();
        let conn_shared = shared.clone();
        tokio::spawn(simkit::accept_loop(listener, "elevenlabs", stop.clone(), move |stream, stop| {
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

    /// Every key presented (header or first message), in arrival order. Test inspection only.
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Characters of text received after the first message, whitespace-only messages excluded.
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

    /// Multi-context `close_context` messages received (barge-ins and turn ends).
    pub fn contexts_closed(&self) -> u64 {
        self.shared.contexts_closed.load(Ordering::Relaxed)
    }
}

impl simkit::RunningSim for ElevenLabsSim {
    fn base_url(&self) -> Url {
        ElevenLabsSim::base_url(self)
    }
    fn seen_keys(&self) -> Vec<String> {
        ElevenLabsSim::seen_keys(self)
    }
}

/// Registry entry: an ElevenLabs simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = ElevenLabsSim::start(ElevenLabsSimConfig {
            keys,
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            fail_after_chars: t.tts_fail_after_chars,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

impl Drop for ElevenLabsSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the HTTP upgrade request told us.
pub(super) struct Handshake {
    pub voice: String,
    pub format: Format,
    pub auto_mode: bool,
    pub inactivity: Duration,
    /// The `xi-api-key` header was present and valid; otherwise the first message must carry one.
    pub authed: bool,
    /// `multi-stream-input`: messages carry `context_id`.
    pub multi: bool,
}

async fn serve(stream: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
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
                tracing::debug!(error = %e, "elevenlabs sim: handshake ended");
                return;
            }
        },
    };
    let Some(hs) = hs else { return };
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    shared.open.fetch_add(1, Ordering::Relaxed);
    if hs.multi {
        multi::run(ws, hs, &shared, stop).await;
    } else {
        conn::run(ws, hs, &shared, stop).await;
    }
    shared.open.fetch_sub(1, Ordering::Relaxed);
}

/// Path, query and header checks, answered like the provider: JSON `detail` bodies.
/// Errors are the HTTP status and JSON body to answer with.
fn check_upgrade(req: &Request, shared: &Shared) -> Result<Handshake, (StatusCode, String)> {
    let segments: Vec<&str> = req.uri().path().split('/').collect();
    let (voice, multi) = match segments.as_slice() {
        ["", "v1", "text-to-speech", voice, "stream-input"] if !voice.is_empty() => ((*voice).to_string(), false),
        ["", "v1", "text-to-speech", voice, "multi-stream-input"] if !voice.is_empty() => ((*voice).to_string(), true),
        _ => return Err((StatusCode::NOT_FOUND, r#"{"detail":"Not Found"}"#.into())),
    };
    let authed = match req.headers().get("xi-api-key") {
        None => false,
        Some(v) => {
            let key = v.to_str().unwrap_or("");
            shared.saw_key(key);
            if !shared.cfg.keys.contains(key) {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#.into(),
                ));
            }
            true
        }
    };
    let mut format = Format::Pcm(44100);
    let mut saw_format = false;
    let mut auto_mode = false;
    let mut inactivity = shared.cfg.inactivity_timeout;
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "output_format" => {
                saw_format = true;
                format = Format::parse(&v).ok_or_else(|| {
                    let msg = format!(
                        r#"{{"detail":{{"status":"invalid_output_format","message":"the simulator produces {} only"}}}}"#,
                        Format::SUPPORTED
                    );
                    (StatusCode::UNPROCESSABLE_ENTITY, msg)
                })?;
            }
            "auto_mode" => auto_mode = v == "true",
            "inactivity_timeout" => match v.parse::<u64>() {
                Ok(s) if (1..=180).contains(&s) => inactivity = Duration::from_secs(s),
                _ => {
                    return Err((
                        StatusCode::UNPROCESSABLE_ENTITY,
                        r#"{"detail":{"status":"invalid_inactivity_timeout","message":"inactivity_timeout must be 1-180 seconds"}}"#.into(),
                    ))
                }
            },
            _ => {}
        }
    }
    if !saw_format {
        // The provider defaults to mp3_44100_128, which the simulator cannot produce.
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"detail":{"status":"invalid_output_format","message":"set output_format; the simulator does not produce mp3"}}"#.into(),
        ));
    }
    Ok(Handshake { voice, format, auto_mode, inactivity, authed, multi })
}

fn reject(status: StatusCode, body: String) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests;
