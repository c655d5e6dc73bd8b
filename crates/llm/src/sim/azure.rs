//! Azure OpenAI simulator (protocols/aws-azure.md Z3) at a resource endpoint
//! (`http://127.0.0.1:PORT`, the shape of `https://{resource}.openai.azure.com`):
//! - classic `POST /openai/deployments/{deployment}/chat/completions?api-version=…` and
//!   `GET /openai/models?api-version=…` (a missing api-version is a 404),
//! - v1 `POST /openai/v1/chat/completions`, `POST /openai/v1/responses`, `GET /openai/v1/models`,
//!
//! keyed by the `api-key` header (a bad key gets Azure's 401 body), streaming Azure's chunk shape
//! (prompt-filter chunk with empty `choices`, filter verdicts, the model version as `model`).
//! Any non-empty deployment name is deployed.

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
pub struct AzureSimConfig {
    /// Accepted resource keys (`api-key`); clones share the set.
    pub keys: SimKeys,
    /// Time to the first content chunk.
    pub first_token_delay: Duration,
    /// Pace of the following chunks; `<= 0` streams them back to back.
    pub tokens_per_sec: f64,
    pub fault: Option<Fault>,
}

impl Default for AzureSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_token_delay: Duration::from_millis(400),
            tokens_per_sec: 60.0,
            fault: None,
        }
    }
}

/// A running simulator; dropping it stops the server and cuts open streams.
pub struct AzureSim {
    server: Server,
}

sim_handle!(AzureSim);

impl AzureSim {
    /// Starts on a free loopback port.
    pub async fn start(cfg: AzureSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Starts on a given address (a standalone sim process with a fixed port).
    pub async fn start_at(addr: SocketAddr, cfg: AzureSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind(addr).await?, cfg).await
    }

    /// Starts on an already bound listener.
    pub async fn start_on(listener: TcpListener, cfg: AzureSimConfig) -> std::io::Result<Self> {
        let settings = Settings {
            keys: cfg.keys,
            first_token_delay: cfg.first_token_delay,
            tokens_per_sec: cfg.tokens_per_sec,
            fault: cfg.fault,
        };
        let server = Server::start(listener, settings, "", "azure", handlers::router).await?;
        Ok(Self { server })
    }

    /// `http://127.0.0.1:PORT/`, a resource endpoint (the adapter adds `/openai/…`).
    pub fn base_url(&self) -> Url {
        self.server.base_url.clone()
    }
}
