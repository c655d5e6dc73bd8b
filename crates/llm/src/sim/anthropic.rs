//! Anthropic Messages simulator (protocols/llm.md D2): `POST /v1/messages` streaming or not,
//! `GET /v1/models`, Anthropic's error bodies (`{"type":"error","error":{type,message}}`),
//! scripted faults (`Fault::Status(529)` is `overloaded_error`).

mod handlers;
mod stream;
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
pub struct AnthropicSimConfig {
    /// Accepted `x-api-key` values; clones share the set, so a test can add one while running.
    pub keys: SimKeys,
    /// Time to first text delta.
    pub first_token_delay: Duration,
    /// Pace of the following deltas; `<= 0` streams them back to back.
    pub tokens_per_sec: f64,
    pub fault: Option<Fault>,
}

impl Default for AnthropicSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_token_delay: Duration::from_millis(600),
            tokens_per_sec: 70.0,
            fault: None,
        }
    }
}

/// A running simulator; dropping it stops the server and cuts open streams.
pub struct AnthropicSim {
    server: Server,
}

sim_handle!(AnthropicSim);

impl AnthropicSim {
    /// Starts on a free loopback port.
    pub async fn start(cfg: AnthropicSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Starts on a given address (a standalone sim process with a fixed port).
    pub async fn start_at(addr: SocketAddr, cfg: AnthropicSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind(addr).await?, cfg).await
    }

    /// Starts on an already bound listener.
    pub async fn start_on(listener: TcpListener, cfg: AnthropicSimConfig) -> std::io::Result<Self> {
        let settings = Settings {
            keys: cfg.keys,
            first_token_delay: cfg.first_token_delay,
            tokens_per_sec: cfg.tokens_per_sec,
            fault: cfg.fault,
        };
        let server = Server::start(listener, settings, "", "anthropic", handlers::router).await?;
        Ok(Self { server })
    }

    /// `http://127.0.0.1:PORT/`, the shape of `https://api.anthropic.com` (the adapter adds
    /// `/v1/messages`).
    pub fn base_url(&self) -> Url {
        self.server.base_url.clone()
    }
}
