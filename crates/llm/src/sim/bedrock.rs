//! AWS Bedrock simulator (protocols/aws-azure.md A4, §K) at a runtime endpoint
//! (`http://127.0.0.1:PORT`, the shape of `https://bedrock-runtime.{region}.amazonaws.com`):
//! `POST /model/{modelId}/converse-stream` answering in event-stream frames (`messageStart`,
//! one `contentBlockDelta` per token, `contentBlockStop`, `messageStop`, `metadata` with usage)
//! and the control plane's `GET /foundation-models` for key checks.
//!
//! Accepted keys are `ACCESS_KEY_ID:SECRET_ACCESS_KEY` strings: a request must carry a SigV4
//! signature (service `bedrock`, any region) that verifies with the secret of its access key id,
//! else AWS's 403 `UnrecognizedClientException` (unknown key id) or `InvalidSignatureException`
//! (wrong secret or tampered request). A key without `:` is a Bedrock API key, accepted as
//! `Authorization: Bearer`. Converse's validation (starts with a user turn, alternates) applies.

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
pub struct BedrockSimConfig {
    /// Accepted `ACCESS_KEY_ID:SECRET_ACCESS_KEY` pairs (or API keys); clones share the set.
    pub keys: SimKeys,
    /// Time to the first text delta.
    pub first_token_delay: Duration,
    /// Pace of the following deltas; `<= 0` streams them back to back.
    pub tokens_per_sec: f64,
    pub fault: Option<Fault>,
}

impl Default for BedrockSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_token_delay: Duration::from_millis(400),
            tokens_per_sec: 80.0,
            fault: None,
        }
    }
}

/// A running simulator; dropping it stops the server and cuts open streams.
pub struct BedrockSim {
    server: Server,
}

sim_handle!(BedrockSim);

impl BedrockSim {
    /// Starts on a free loopback port.
    pub async fn start(cfg: BedrockSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Starts on a given address (a standalone sim process with a fixed port).
    pub async fn start_at(addr: SocketAddr, cfg: BedrockSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind(addr).await?, cfg).await
    }

    /// Starts on an already bound listener.
    pub async fn start_on(listener: TcpListener, cfg: BedrockSimConfig) -> std::io::Result<Self> {
        let settings = Settings {
            keys: cfg.keys,
            first_token_delay: cfg.first_token_delay,
            tokens_per_sec: cfg.tokens_per_sec,
            fault: cfg.fault,
        };
        let server = Server::start(listener, settings, "", "bedrock", handlers::router).await?;
        Ok(Self { server })
    }

    /// `http://127.0.0.1:PORT/`; the adapter signs for `us-east-1` unless `?region=` says
    /// otherwise (the sim accepts any region).
    pub fn base_url(&self) -> Url {
        self.server.base_url.clone()
    }
}
