//! Deepgram Aura simulator (protocols/tts.md C5): `GET /v1/models` for key checks and the
//! `/v1/speak` websocket on one loopback port.

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
pub struct DeepgramTtsSimConfig {
    pub keys: SimKeys,
    /// From a `Flush` to the first audio of that text.
    pub first_audio_delay: Duration,
    /// Audio length per character, so duration follows the text.
    pub ms_per_char: u32,
    /// Fault injection: close 1011 once this many characters are voiced.
    pub fail_after_chars: Option<u64>,
    /// Seconds of audio produced per wall-clock second.
    pub pace: f32,
    /// Target audio length of one binary frame.
    pub piece_ms: u32,
    /// `Flush` messages allowed per rolling minute; more get a `Warning` and are ignored.
    pub flushes_per_minute: usize,
}

impl Default for DeepgramTtsSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_audio_delay: Duration::from_millis(150),
            ms_per_char: 50,
            fail_after_chars: None,
            pace: 2.0,
            piece_ms: 200,
            flushes_per_minute: 20,
        }
    }
}

impl DeepgramTtsSimConfig {
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
pub struct DeepgramTtsSim {
    server: SimServer,
}

impl DeepgramTtsSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: DeepgramTtsSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound.
    pub async fn start_on(listener: TcpListener, cfg: DeepgramTtsSimConfig) -> std::io::Result<Self> {
        let keys = cfg.keys.clone();
        Ok(Self { server: SimServer::start(listener, keys, Deepgram { cfg }).await? })
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

    /// Characters received in `Speak` messages.
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

impl simkit::RunningSim for DeepgramTtsSim {
    fn base_url(&self) -> Url {
        DeepgramTtsSim::base_url(self)
    }
    fn seen_keys(&self) -> Vec<String> {
        DeepgramTtsSim::seen_keys(self)
    }
}

/// Registry entry: a Deepgram Aura simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = DeepgramTtsSim::start(DeepgramTtsSimConfig {
            keys,
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

const RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];

const MODELS: &str = r#"{"stt":[],"tts":[{"name":"thalia","canonical_name":"aura-2-thalia-en","architecture":"aura-2","languages":["en"],"version":"2025-04-07.0","uuid":"ecb76e9d-f2cc-4bdd-9b6b-c8a8d1f6e8b4","metadata":{"accent":"American","tags":["feminine"]}}]}"#;

/// Deepgram's REST error shape.
fn error_body(status: u16, code: &str, message: &str) -> Reply {
    let body =
        serde_json::json!({"err_code": code, "err_msg": message, "request_id": uuid::Uuid::new_v4().to_string()});
    Reply::new(status, body.to_string())
}

/// What the upgrade request chose.
pub(super) struct Handshake {
    pub model: String,
    pub sample_rate: u32,
}

struct Deepgram {
    cfg: DeepgramTtsSimConfig,
}

impl Service for Deepgram {
    type Session = Handshake;

    fn name(&self) -> &'static str {
        "deepgram-tts"
    }

    fn route(&self, head: &RequestHead, stats: &Stats) -> Route<Handshake> {
        let ws = match (head.method.as_str(), head.path.trim_end_matches('/')) {
            ("GET", "/v1/models") => false,
            ("GET", "/v1/speak") => true,
            _ => return Route::Reply(error_body(404, "NOT_FOUND", "Not found.")),
        };
        let key = head.header_key("authorization", "Token ").or_else(|| head.header_key("authorization", "Bearer "));
        if !key.is_some_and(|k| stats.check_key(k)) {
            return Route::Reply(error_body(401, "INVALID_AUTH", "Invalid credentials."));
        }
        if !ws {
            return Route::Reply(Reply::new(200, MODELS));
        }
        let model = head.query_param("model").unwrap_or_else(|| "aura-asteria-en".into());
        // `aura-<voice>-<lang>` or `aura-2-<voice>-<lang>`: a voice must follow the family.
        let voice = model.strip_prefix("aura-2-").or_else(|| model.strip_prefix("aura-"));
        if voice.is_none_or(|v| v.is_empty() || v == "2") {
            return Route::Reply(error_body(
                400,
                "INVALID_QUERY_PARAMETER",
                "No such model/version combination found.",
            ));
        }
        if head.query_param("encoding").is_some_and(|e| e != "linear16") {
            return Route::Reply(error_body(400, "UNSUPPORTED_AUDIO_FORMAT", "The simulator produces linear16 only."));
        }
        let sample_rate = match head.query_param("sample_rate").map(|r| r.parse::<u32>()) {
            None => 24000,
            Some(Ok(r)) if RATES.contains(&r) => r,
            Some(_) => {
                return Route::Reply(error_body(
                    400,
                    "UNSUPPORTED_AUDIO_FORMAT",
                    "sample_rate must be 8000, 16000, 24000, 32000 or 48000 for linear16.",
                ))
            }
        };
        if !head.is_websocket() {
            return Route::Reply(error_body(426, "UPGRADE_REQUIRED", "Use a WebSocket client."));
        }
        Route::Upgrade(Handshake { model, sample_rate })
    }

    async fn serve(self: Arc<Self>, ws: SimWs, hs: Handshake, stats: Arc<Stats>, stop: CancellationToken) {
        conn::run(ws, hs, &self.cfg, &stats, stop).await
    }
}

#[cfg(test)]
mod tests;
