//! Cartesia simulator (protocols/tts.md C3): `GET /voices` for key checks and the
//! `/tts/websocket` context protocol on one loopback port.

mod conn;

use super::pacer::Pacing;
use super::wire_server::{Reply, RequestHead, Route, Service, SimServer, SimWs, Stats};
use super::SimKeys;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Behaviour knobs; defaults are close to a fast real provider.
#[derive(Debug, Clone)]
pub struct CartesiaSimConfig {
    pub keys: SimKeys,
    /// From the text that triggers a generation to its first chunk.
    pub first_audio_delay: Duration,
    /// Audio length per character, so duration follows the text.
    pub ms_per_char: u32,
    /// Fault injection: an `error` message and close 1011 once this many characters are voiced.
    pub fail_after_chars: Option<u64>,
    /// Seconds of audio produced per wall-clock second.
    pub pace: f32,
    /// Target audio length of one `chunk`.
    pub piece_ms: u32,
    /// How long buffered text without a sentence end waits for more (`max_buffer_delay_ms`
    /// in a request overrides it).
    pub max_buffer_delay: Duration,
}

impl Default for CartesiaSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_audio_delay: Duration::from_millis(120),
            ms_per_char: 50,
            fail_after_chars: None,
            pace: 2.0,
            piece_ms: 200,
            max_buffer_delay: Duration::from_millis(3000),
        }
    }
}

impl CartesiaSimConfig {
    fn pacing(&self) -> Pacing {
        Pacing {
            ms_per_char: self.ms_per_char,
            piece_ms: self.piece_ms,
            pace: self.pace,
            first_audio_delay: self.first_audio_delay,
        }
    }
}

/// A running simulator; stops on drop.
pub struct CartesiaSim {
    server: SimServer,
}

impl CartesiaSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: CartesiaSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound.
    pub async fn start_on(listener: TcpListener, cfg: CartesiaSimConfig) -> std::io::Result<Self> {
        let keys = cfg.keys.clone();
        Ok(Self { server: SimServer::start(listener, keys, Cartesia { cfg }).await? })
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
        &self.server.stats.keys
    }

    /// Every key presented, in arrival order. Test inspection only.
    pub fn seen_keys(&self) -> Vec<String> {
        self.server.stats.seen_keys()
    }

    /// Transcript characters received, whitespace-only transcripts excluded.
    pub fn chars_received(&self) -> u64 {
        self.server.stats.chars_received.load(Ordering::Relaxed)
    }

    pub fn open_connections(&self) -> usize {
        self.server.stats.open.load(Ordering::Relaxed)
    }

    pub fn connections_accepted(&self) -> u64 {
        self.server.stats.accepted.load(Ordering::Relaxed)
    }
}

impl simkit::RunningSim for CartesiaSim {
    fn base_url(&self) -> Url {
        CartesiaSim::base_url(self)
    }
    fn seen_keys(&self) -> Vec<String> {
        CartesiaSim::seen_keys(self)
    }
}

/// Registry entry: a Cartesia simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = CartesiaSim::start(CartesiaSimConfig {
            keys,
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

const VOICE_LIST: &str = r#"{"data":[{"id":"f786b574-daa5-4673-aa0c-cbe3e8534c02","name":"Katie","description":"Simulated voice","language":"en","is_public":true}],"has_more":false,"next_page":null}"#;

fn error_body(status: u16, title: &str, message: &str, code: &str) -> Reply {
    let body = serde_json::json!({
        "error_code": code, "title": title, "message": message,
        "request_id": uuid::Uuid::new_v4().to_string(),
    });
    Reply::new(status, body.to_string())
}

struct Cartesia {
    cfg: CartesiaSimConfig,
}

impl Service for Cartesia {
    /// Nothing beyond the checks the upgrade already passed.
    type Session = ();

    fn name(&self) -> &'static str {
        "cartesia"
    }

    fn route(&self, head: &RequestHead, stats: &Stats) -> Route<()> {
        let ws = match (head.method.as_str(), head.path.trim_end_matches('/')) {
            ("GET", "/voices") => false,
            ("GET", "/tts/websocket") => true,
            _ => return Route::Reply(error_body(404, "Not Found", "No such route", "not_found")),
        };
        // Browsers cannot set headers, so the socket also takes the key and version as query.
        let query_key = if ws { head.query_param("api_key") } else { None };
        let key =
            head.header("x-api-key").or_else(|| head.header_key("authorization", "Bearer ")).or(query_key.as_deref());
        let Some(key) = key else {
            return Route::Reply(error_body(401, "Unauthorized", "Missing API key", "missing_api_key"));
        };
        if !stats.check_key(key) {
            return Route::Reply(error_body(401, "Unauthorized", "Invalid API key", "invalid_api_key"));
        }
        let version =
            head.header("cartesia-version").map(str::to_string).or_else(|| head.query_param("cartesia_version"));
        if version.as_deref().is_none_or(str::is_empty) {
            return Route::Reply(error_body(
                400,
                "Bad Request",
                "Missing Cartesia-Version header or cartesia_version query parameter",
                "missing_version",
            ));
        }
        match ws {
            false => Route::Reply(Reply::new(200, VOICE_LIST)),
            true if head.is_websocket() => Route::Upgrade(()),
            true => Route::Reply(error_body(426, "Upgrade Required", "Use a WebSocket client", "upgrade_required")),
        }
    }

    async fn serve(self: Arc<Self>, ws: SimWs, (): (), stats: Arc<Stats>, stop: CancellationToken) {
        conn::run(ws, &self.cfg, &stats, stop).await
    }
}

#[cfg(test)]
mod tests;
