//! Soniox real-time TTS simulator (protocols/llm-more.md E4) on a loopback port: one socket
//! multiplexes up to five streams by `stream_id`, each authenticated by its config message.

mod conn;

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

/// Behaviour knobs; defaults are close to a fast real provider.
#[derive(Debug, Clone)]
pub struct SonioxSimConfig {
    pub keys: SimKeys,
    /// From the text that triggers a generation to its first audio.
    pub first_audio_delay: Duration,
    /// Audio length per character, so duration follows the text.
    pub ms_per_char: u32,
    /// Fault injection: a per-stream `error_code` 500 (then `terminated`) once this many
    /// characters of a stream are voiced. The socket stays open, as on the provider.
    pub fail_after_chars: Option<u64>,
    /// Close the socket after this long without any client message while nothing generates.
    pub idle_timeout: Duration,
    /// Seconds of audio produced per wall-clock second.
    pub pace: f32,
    /// Target audio length of one `audio` message.
    pub piece_ms: u32,
}

impl Default for SonioxSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_audio_delay: Duration::from_millis(150),
            ms_per_char: 50,
            fail_after_chars: None,
            idle_timeout: Duration::from_secs(30),
            pace: 2.0,
            piece_ms: 200,
        }
    }
}

/// A running simulator; stops (listener and every connection) on drop.
pub struct SonioxSim {
    base_url: Url,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

pub(super) struct Shared {
    cfg: SonioxSimConfig,
    seen_keys: Mutex<Vec<String>>,
    chars_received: AtomicU64,
    open: AtomicUsize,
    streams_opened: AtomicU64,
}

impl Shared {
    fn check_key(&self, key: &str) -> bool {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
        self.cfg.keys.contains(key)
    }
}

impl SonioxSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: SonioxSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound.
    pub async fn start_on(listener: TcpListener, cfg: SonioxSimConfig) -> std::io::Result<Self> {
        let addr: SocketAddr = listener.local_addr()?;
        let base_url = Url::parse(&format!("ws://{addr}")).map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            cfg,
            seen_keys: Mutex::new(Vec::new()),
            chars_received: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            streams_opened: AtomicU64::new(0),
        });
        let stop = CancellationToken::new();
        let conn_shared = shared.clone();
        tokio::spawn(simkit::accept_loop(listener, "soniox", stop.clone(), move |stream, stop| {
            serve(stream, conn_shared.clone(), stop)
        }));
        Ok(Self { base_url, shared, stop })
    }

    /// `ws://127.0.0.1:PORT`, to pass as the adapter's base URL.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn keys(&self) -> &SimKeys {
        &self.shared.cfg.keys
    }

    /// Every key presented in a config message, in arrival order. Test inspection only.
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Characters of `text` received.
    pub fn chars_received(&self) -> u64 {
        self.shared.chars_received.load(Ordering::Relaxed)
    }

    /// WebSocket connections currently open.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Streams accepted (valid config) since start.
    pub fn streams_opened(&self) -> u64 {
        self.shared.streams_opened.load(Ordering::Relaxed)
    }
}

impl simkit::RunningSim for SonioxSim {
    fn base_url(&self) -> Url {
        SonioxSim::base_url(self)
    }
    fn seen_keys(&self) -> Vec<String> {
        SonioxSim::seen_keys(self)
    }
}

/// Registry entry: a Soniox TTS simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = SonioxSim::start(SonioxSimConfig {
            keys,
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

impl Drop for SonioxSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
    #[allow(clippy::result_large_err)] // the shape tungstenite's `Callback` requires
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == "/tts-websocket" {
            return Ok(resp);
        }
        let mut err = ErrorResponse::new(Some(r#"{"error_code":404,"error_message":"Not found."}"#.to_string()));
        *err.status_mut() = StatusCode::NOT_FOUND;
        err.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Err(err)
    };
    let ws = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio_tungstenite::accept_hdr_async(stream, callback) => match r {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "soniox sim: handshake ended");
                return;
            }
        },
    };
    shared.open.fetch_add(1, Ordering::Relaxed);
    conn::run(ws, &shared, stop).await;
    shared.open.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests;
