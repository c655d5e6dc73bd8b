//! OpenAI Chat Completions simulator (protocols/llm.md D1): `POST /v1/chat/completions` streaming
//! or not, `GET /v1/models`, OpenAI's error bodies, scripted faults.

mod handlers;
mod stream;
#[cfg(test)]
mod tests;

use super::SimKeys;
use crate::Message;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// A failure to inject into every chat completion request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with OpenAI's error body before streaming (429 adds `retry-after-ms`).
    Status(u16),
    /// Cut the connection after this many content tokens: no finish, usage or `[DONE]`.
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
    addr: SocketAddr,
    base_url: Url,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

pub(super) struct Shared {
    keys: SimKeys,
    first_token_delay: Duration,
    tokens_per_sec: f64,
    fault: Mutex<Option<Fault>>,
    requests: AtomicU64,
    open_streams: Arc<AtomicUsize>,
    seen_keys: Mutex<Vec<String>>,
    last_messages: Mutex<Vec<Message>>,
    /// Ends open streams when the sim is dropped, so graceful shutdown does not wait on them.
    stop: CancellationToken,
}

impl Shared {
    fn saw_key(&self, key: &str) {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
    }

    fn fault(&self) -> Option<Fault> {
        self.fault.lock().ok().and_then(|f| *f)
    }
}

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
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("http://{addr}/v1"))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            keys: cfg.keys,
            first_token_delay: cfg.first_token_delay,
            tokens_per_sec: cfg.tokens_per_sec,
            fault: Mutex::new(cfg.fault),
            requests: AtomicU64::new(0),
            open_streams: Arc::default(),
            seen_keys: Mutex::new(Vec::new()),
            last_messages: Mutex::new(Vec::new()),
            stop: stop.clone(),
        });
        let app = handlers::router(shared.clone());
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "OpenAI simulator stopped");
            }
        });
        Ok(Self {
            addr,
            base_url,
            shared,
            stop,
        })
    }

    /// `http://127.0.0.1:PORT/v1`, the shape of `https://api.openai.com/v1`.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn keys(&self) -> &SimKeys {
        &self.shared.keys
    }

    /// Replaces the injected fault for the following requests.
    pub fn set_fault(&self, fault: Option<Fault>) {
        if let Ok(mut f) = self.shared.fault.lock() {
            *f = fault;
        }
    }

    /// Chat completion requests received, including refused ones.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Streaming responses still being written (a client that hangs up ends its stream).
    pub fn open_streams(&self) -> usize {
        self.shared.open_streams.load(Ordering::Relaxed)
    }

    /// Every bearer key presented, in arrival order (test inspection only; never log them).
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared
            .seen_keys
            .lock()
            .map(|k| k.clone())
            .unwrap_or_default()
    }

    /// The conversation of the last accepted chat request (`developer` counts as system;
    /// `tool` messages are left out).
    pub fn last_request_messages(&self) -> Vec<Message> {
        self.shared
            .last_messages
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}

impl Drop for OpenAiSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
