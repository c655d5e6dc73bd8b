//! Rime `ws3` simulator (protocols/tts.md C4) on a loopback port.

mod conn;

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
pub struct RimeSimConfig {
    pub keys: SimKeys,
    /// From the text that completes a segment to its first chunk.
    pub first_audio_delay: Duration,
    /// Audio length per character, so duration follows the text.
    pub ms_per_char: u32,
    /// Fault injection: an `error` message and close 1011 once this many characters are voiced.
    pub fail_after_chars: Option<u64>,
    /// Seconds of audio produced per wall-clock second.
    pub pace: f32,
    /// Target audio length of one `chunk`.
    pub piece_ms: u32,
}

impl Default for RimeSimConfig {
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

/// A running simulator; stops on drop.
pub struct RimeSim {
    server: SimServer,
}

impl RimeSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: RimeSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound.
    pub async fn start_on(listener: TcpListener, cfg: RimeSimConfig) -> std::io::Result<Self> {
        let keys = cfg.keys.clone();
        Ok(Self { server: SimServer::start(listener, keys, Rime { cfg }).await? })
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

    /// Characters of text received.
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

impl simkit::RunningSim for RimeSim {
    fn base_url(&self) -> Url {
        RimeSim::base_url(self)
    }
    fn seen_keys(&self) -> Vec<String> {
        RimeSim::seen_keys(self)
    }
}

/// Registry entry: a Rime simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = RimeSim::start(RimeSimConfig {
            keys,
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

const MODELS: [&str; 4] = ["mist", "mistv2", "mistv3", "coda"];
const RATES: [u32; 7] = [8000, 16000, 22050, 24000, 32000, 44100, 48000];

/// When the server voices buffered text (`segment` query parameter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Segment {
    /// Each text message at once.
    Immediate,
    /// Each completed sentence.
    BySentence,
    /// Only on `flush`/`eos`.
    Never,
}

/// What the upgrade request chose.
pub(super) struct Handshake {
    pub sample_rate: u32,
    pub segment: Segment,
}

fn reject(status: u16, message: &str) -> Route<Handshake> {
    Route::Reply(Reply::new(status, serde_json::json!({"message": message}).to_string()))
}

struct Rime {
    cfg: RimeSimConfig,
}

impl Service for Rime {
    type Session = Handshake;

    fn name(&self) -> &'static str {
        "rime"
    }

    fn route(&self, head: &RequestHead, stats: &Stats) -> Route<Handshake> {
        if head.method != "GET" || head.path.trim_end_matches('/') != "/ws3" {
            return reject(404, "Not Found");
        }
        let key = head.header_key("authorization", "Bearer ");
        if !key.is_some_and(|k| stats.check_key(k)) {
            return reject(401, "Unauthorized: invalid or missing API key");
        }
        if head.query_param("speaker").is_none_or(|s| s.is_empty()) {
            return reject(400, "speaker is required");
        }
        let model = head.query_param("modelId").unwrap_or_else(|| "mistv2".into());
        if !MODELS.contains(&model.as_str()) {
            return reject(400, "modelId must be one of mist, mistv2, mistv3, coda");
        }
        if head.query_param("audioFormat").as_deref() != Some("pcm") {
            return reject(400, "the simulator produces audioFormat=pcm only");
        }
        let sample_rate = match head.query_param("samplingRate").map(|r| r.parse::<u32>()) {
            None => 22050,
            Some(Ok(r)) if RATES.contains(&r) => r,
            Some(_) => return reject(400, "unsupported samplingRate"),
        };
        let segment = match head.query_param("segment").as_deref() {
            None | Some("bySentence") => Segment::BySentence,
            Some("immediate") => Segment::Immediate,
            Some("never") => Segment::Never,
            Some(_) => return reject(400, "segment must be immediate, bySentence or never"),
        };
        if !head.is_websocket() {
            return reject(426, "Upgrade Required");
        }
        Route::Upgrade(Handshake { sample_rate, segment })
    }

    async fn serve(self: Arc<Self>, ws: SimWs, hs: Handshake, stats: Arc<Stats>, stop: CancellationToken) {
        conn::run(ws, hs, &self.cfg, &stats, stop).await
    }
}

#[cfg(test)]
mod tests;
