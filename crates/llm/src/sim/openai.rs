//! OpenAI simulator: Chat Completions (protocols/llm.md D1) `POST /v1/chat/completions` and
//! Responses (llm-more.md E1) `POST /v1/responses`, streaming or not, `GET /v1/models`, OpenAI's
//! error bodies, scripted faults and function calls. The Azure sim reuses its bodies.

pub(super) mod handlers;
pub(super) mod responses;
#[cfg(test)]
mod responses_tests;
pub(super) mod stream;
#[cfg(test)]
mod tests;

use super::server::{sim_handle, Server, Settings};
use super::SimKeys;
use responses::{Script, ToolScript};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use url::Url;

pub(super) use super::server::Shared;

/// A failure to inject into every completion request, in any simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with the provider's error body before streaming (429 adds a retry
    /// hint).
    Status(u16),
    /// Cut the connection after this many content tokens: no finish, usage or end marker.
    DropAfterTokens(usize),
}

#[derive(Debug, Clone)]
pub struct OpenAiSimConfig {
    /// Accepted keys; clones share the set, so a test can add one while the sim runs.
    pub keys: SimKeys,
    /// Time to first content token (OpenAI's small models are in this range).
    pub first_token_delay: Duration,
    /// Pace of the following tokens; `<= 0` streams them back to back.
    pub tokens_per_sec: f64,
    pub fault: Option<Fault>,
}

impl Default for OpenAiSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_token_delay: Duration::from_millis(350),
            tokens_per_sec: 60.0,
            fault: None,
        }
    }
}

/// A running simulator; dropping it stops the server and cuts open streams.
pub struct OpenAiSim {
    server: Server,
    script: Script,
}

sim_handle!(OpenAiSim);

impl OpenAiSim {
    /// Starts on a free loopback port.
    pub async fn start(cfg: OpenAiSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Starts on a given address (a standalone sim process with a fixed port).
    pub async fn start_at(addr: SocketAddr, cfg: OpenAiSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind(addr).await?, cfg).await
    }

    /// Starts on an already bound listener.
    pub async fn start_on(listener: TcpListener, cfg: OpenAiSimConfig) -> std::io::Result<Self> {
        let settings = Settings {
            keys: cfg.keys,
            first_token_delay: cfg.first_token_delay,
            tokens_per_sec: cfg.tokens_per_sec,
            fault: cfg.fault,
        };
        let script = Script::default();
        let routes = script.clone();
        let server =
            Server::start(listener, settings, "/v1", "openai", move |shared| handlers::router(shared, routes)).await?;
        Ok(Self { server, script })
    }

    /// `http://127.0.0.1:PORT/v1`, the shape of `https://api.openai.com/v1`.
    pub fn base_url(&self) -> Url {
        self.server.base_url.clone()
    }

    /// From now on, Responses answers call this function instead of replying (`None`: reply).
    pub fn set_tool_call(&self, call: Option<ToolScript>) {
        if let Ok(mut s) = self.script.lock() {
            *s = call;
        }
    }

    /// Report streamed usage the Groq way from now on: under `x_groq.usage` on the finish
    /// chunk, with no separate usage chunk (so only the `x_groq` path can bill it).
    pub fn set_x_groq_usage(&self, on: bool) {
        self.server.shared.x_groq_usage.store(on, Ordering::Relaxed);
    }
}
