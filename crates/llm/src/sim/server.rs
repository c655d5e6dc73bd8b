//! What every simulator shares: its settings, request bookkeeping and the server task.

use super::{Fault, SimKeys};
use crate::Message;
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// A sim's configuration, whatever its provider.
pub(super) struct Settings {
    pub keys: SimKeys,
    pub first_token_delay: Duration,
    pub tokens_per_sec: f64,
    pub fault: Option<Fault>,
}

pub(super) struct Shared {
    pub keys: SimKeys,
    pub first_token_delay: Duration,
    pub tokens_per_sec: f64,
    pub fault: Mutex<Option<Fault>>,
    pub requests: AtomicU64,
    pub open_streams: Arc<AtomicUsize>,
    pub seen_keys: Mutex<Vec<String>>,
    pub last_messages: Mutex<Vec<Message>>,
    /// OpenAI sim only: report usage the Groq way (`x_groq.usage`).
    pub x_groq_usage: AtomicBool,
    /// Ends open streams when the sim is dropped, so graceful shutdown does not wait on them.
    pub stop: CancellationToken,
}

impl Shared {
    pub fn saw_key(&self, key: &str) {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
    }

    pub fn fault(&self) -> Option<Fault> {
        self.fault.lock().ok().and_then(|f| *f)
    }

    pub fn remember(&self, messages: &[Message]) {
        if let Ok(mut last) = self.last_messages.lock() {
            last.clear();
            last.extend_from_slice(messages);
        }
    }
}

/// A running server; dropping it stops the server and cuts open streams.
pub(super) struct Server {
    pub addr: SocketAddr,
    pub base_url: Url,
    pub shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Server {
    /// Serves `router(shared)` on `listener`; the base URL is `http://ADDR{base_path}`.
    pub async fn start(
        listener: TcpListener,
        settings: Settings,
        base_path: &str,
        name: &'static str,
        router: impl FnOnce(Arc<Shared>) -> Router,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("http://{addr}{base_path}"))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            keys: settings.keys,
            first_token_delay: settings.first_token_delay,
            tokens_per_sec: settings.tokens_per_sec,
            fault: Mutex::new(settings.fault),
            requests: AtomicU64::new(0),
            open_streams: Arc::default(),
            seen_keys: Mutex::new(Vec::new()),
            last_messages: Mutex::new(Vec::new()),
            x_groq_usage: AtomicBool::new(false),
            stop: stop.clone(),
        });
        let app = router(shared.clone());
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(error = %e, sim = name, "simulator stopped");
            }
        });
        Ok(Self { addr, base_url, shared, stop })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The inspection methods every sim handle has (`$t` holds a `server: Server`).
macro_rules! sim_handle {
    ($t:ty) => {
        impl $t {
            pub fn addr(&self) -> std::net::SocketAddr {
                self.server.addr
            }

            pub fn keys(&self) -> &$crate::sim::SimKeys {
                &self.server.shared.keys
            }

            /// Replaces the injected fault for the following requests.
            pub fn set_fault(&self, fault: Option<$crate::sim::Fault>) {
                if let Ok(mut f) = self.server.shared.fault.lock() {
                    *f = fault;
                }
            }

            /// Completion requests received, including refused ones.
            pub fn requests(&self) -> u64 {
                self.server.shared.requests.load(std::sync::atomic::Ordering::Relaxed)
            }

            /// Streaming responses still being written (a client that hangs up ends its stream).
            pub fn open_streams(&self) -> usize {
                self.server.shared.open_streams.load(std::sync::atomic::Ordering::Relaxed)
            }

            /// Every key presented, in arrival order (test inspection only; never log them).
            pub fn seen_keys(&self) -> Vec<String> {
                self.server.shared.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
            }

            /// The conversation of the last accepted completion request, system prompt first.
            pub fn last_request_messages(&self) -> Vec<$crate::Message> {
                self.server.shared.last_messages.lock().map(|m| m.clone()).unwrap_or_default()
            }
        }

        impl simkit::RunningSim for $t {
            fn base_url(&self) -> url::Url {
                self.server.base_url.clone()
            }
            fn seen_keys(&self) -> Vec<String> {
                <$t>::seen_keys(self)
            }
            fn last_request(&self) -> Option<serde_json::Value> {
                serde_json::to_value(self.last_request_messages()).ok()
            }
        }
    };
}
pub(super) use sim_handle;
