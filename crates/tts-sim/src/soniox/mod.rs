//! Soniox real-time TTS simulator (protocols/llm-more.md E4) on a loopback port: one socket
//! multiplexes up to five streams by `stream_id`, each authenticated by its config message.

mod conn;

use crate::Voicing;
use simkit::{Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Behaviour knobs; defaults are close to a fast real provider. The fault is a per-stream
/// `error_code` 500, then `terminated`; the socket stays open, as on the provider.
#[derive(Debug, Clone)]
pub struct SonioxSimConfig {
    pub voicing: Voicing,
    /// Close the socket after this long without any client message while nothing generates.
    pub idle_timeout: Duration,
}

impl Default for SonioxSimConfig {
    fn default() -> Self {
        Self { voicing: Voicing::default(), idle_timeout: Duration::from_secs(30) }
    }
}

/// A running Soniox simulator: `SonioxSim::start(keys, config.into())`; stops on drop.
/// `received` counts characters of `text`; [`Soniox::streams_opened`] the streams.
pub type SonioxSim = SimServer<Soniox>;

/// The Soniox service: its knobs and the count of streams it accepted.
pub struct Soniox {
    cfg: SonioxSimConfig,
    streams_opened: AtomicU64,
}

impl From<SonioxSimConfig> for Soniox {
    fn from(cfg: SonioxSimConfig) -> Self {
        Self { cfg, streams_opened: AtomicU64::new(0) }
    }
}

impl Soniox {
    /// Streams accepted (valid config) since start.
    pub fn streams_opened(&self) -> u64 {
        self.streams_opened.load(Ordering::Relaxed)
    }
}

impl Service for Soniox {
    /// Streams authenticate in their config messages, not at the upgrade.
    type Session = ();

    const NAME: &'static str = "soniox";

    fn route(&self, req: &Request, _: &Stats) -> Route<()> {
        if req.path != "/tts-websocket" {
            return Route::Reply(Reply::json(404, r#"{"error_code":404,"error_message":"Not found."}"#));
        }
        Route::Upgrade(())
    }

    async fn serve(self: Arc<Self>, ws: Ws, (): (), stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        conn::run(ws, &self, &stats, stop).await;
    }
}

#[cfg(test)]
mod tests;
