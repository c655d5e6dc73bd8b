//! Google Gemini (AI Studio) simulator (protocols/llm.md D3):
//! `POST /v1beta/models/{model}:streamGenerateContent` (SSE with `alt=sse`, else one JSON
//! array), `:generateContent`, `GET /v1beta/models`, Google's error bodies (a bad key is 400
//! `INVALID_ARGUMENT` / `API_KEY_INVALID`), scripted faults.

mod handlers;
#[cfg(test)]
mod tests;

use super::server::{sim_handle, Server, Settings};
use super::{Fault, SimKeys};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use url::Url;

use super::server::Shared;

#[derive(Debug, Clone)]
pub struct GeminiSimConfig {
    /// Accepted keys (`x-goog-api-key` or `?key=`); clones share the set.
    pub keys: SimKeys,
    /// Time to the first text chunk.
    pub first_token_delay: Duration,
    /// Pace of the following chunks; `<= 0` streams them back to back.
    pub tokens_per_sec: f64,
    pub fault: Option<Fault>,
}

impl Default for GeminiSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_token_delay: Duration::from_millis(450),
            tokens_per_sec: 120.0,
            fault: None,
        }
    }
}

/// A running simulator; dropping it stops the server and cuts open streams.
pub struct GeminiSim {
    server: Server,
}

sim_handle!(GeminiSim);

impl GeminiSim {
    /// Starts on a free loopback port.
    pub async fn start(cfg: GeminiSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Starts on a given address (a standalone sim process with a fixed port).
    pub async fn start_at(addr: SocketAddr, cfg: GeminiSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind(addr).await?, cfg).await
    }

    /// Starts on an already bound listener.
    pub async fn start_on(listener: TcpListener, cfg: GeminiSimConfig) -> std::io::Result<Self> {
        let settings = Settings {
            keys: cfg.keys,
            first_token_delay: cfg.first_token_delay,
            tokens_per_sec: cfg.tokens_per_sec,
            fault: cfg.fault,
        };
        let server = Server::start(listener, settings, "", "gemini", handlers::router).await?;
        Ok(Self { server })
    }

    /// `http://127.0.0.1:PORT/`, the shape of `https://generativelanguage.googleapis.com`
    /// (the adapter adds `/v1beta/models/…`).
    pub fn base_url(&self) -> Url {
        self.server.base_url.clone()
    }
}
