//! Pieces shared by the provider simulators of the stt, tts, llm and carrier crates: the keys a
//! simulator accepts, the tuning knobs of `switchboard sim`, [`RunningSim`] (the type-erased
//! handle each simulator registry hands back so the binary can start every simulator without
//! naming any), and the one generic simulator server they all run on.
//!
//! # A simulator = a [`Service`] + a [`Protocol`]
//! - [`SimServer`] binds a loopback port and accepts; for each connection it reads the HTTP
//!   request itself ([`Request`]: method, path, query, headers, a sized or chunked body up to
//!   [`Service::MAX_BODY`]) and asks the simulator's [`Service::route`] what to do: answer
//!   with a [`Reply`] (a REST key check, a session init, a refusal with the provider's status
//!   and body), stream a reply as it is produced ([`Route::Stream`]: paced tokens or audio,
//!   ended early when the client hangs up), or upgrade to a websocket ([`Route::Upgrade`], the
//!   session the checks produced). REST calls and websockets share one port, as on the real
//!   host; a REST-only simulator (the LLM APIs) keeps [`Service::serve`]'s default. A reply
//!   that needs an await first (a call back to a peer) is a [`Route::Deferred`]. Dropping the
//!   handle stops the listener and every socket.
//! - [`Service::serve`] gets the upgraded [`Ws`], the session, the shared [`Stats`] and a stop
//!   token. Streaming simulators hand the socket to [`run`], the frame loop: it sends the
//!   [`Protocol`]'s queued messages no earlier than their due time ([`Outbox`]), restarts the
//!   idle timer on [`Flow::Active`] frames and calls [`Protocol::on_idle`] when it runs out,
//!   and closes with the code and reason a [`Flow::Close`] names (after what is queued).
//! - [`Stats`] holds the accepted [`SimKeys`] and what tests inspect: keys presented
//!   ([`Stats::check_key`], [`Stats::accept`]), streams accepted and open ([`Stats::accept`]
//!   returns a guard), and a received counter in the service's unit ([`Stats::received`]).
//! - [`SimServer`] implements [`RunningSim`], so a registry entry is
//!   `SimServer::start(keys, MySim::new(cfg))` boxed.
//!
//! ```ignore
//! struct Echo;
//! impl Service for Echo {
//!     type Session = ();
//!     const NAME: &'static str = "echo";
//!     fn route(&self, req: &Request, stats: &Stats) -> Route<()> {
//!         match req.header_key("authorization", "Token ") {
//!             Some(k) if stats.check_key(k) => Route::Upgrade(()),
//!             _ => Route::Reply(Reply::json(401, r#"{"error":"bad key"}"#)),
//!         }
//!     }
//!     async fn serve(self: Arc<Self>, mut ws: Ws, _: (), stats: Arc<Stats>, stop: CancellationToken) {
//!         let _open = stats.open();
//!         simkit::run(&mut ws, &mut EchoProtocol, &stop).await;
//!     }
//! }
//! ```

mod frames;
mod request;
mod server;
mod stall;

pub use frames::{close, drain, run, Flow, Outbox, Protocol};
pub use request::{Reply, Request};
pub use server::{BodyStream, DeferredReply, Io, OpenGuard, Route, Service, SimServer, Stats, Ws};
pub use stall::{stall_like, Stalled};
pub use tokio_tungstenite::tungstenite::Message;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A simulator serving on a loopback port until dropped.
pub trait RunningSim: Send + Sync {
    /// What an adapter is given as its base URL (`ws://127.0.0.1:PORT`, `http://…/v1`).
    fn base_url(&self) -> url::Url;
    /// The key of every accepted connection or request, in order. Test inspection only.
    fn seen_keys(&self) -> Vec<String>;
    /// The messages of the last LLM request, for simulators that keep them (barge-in tests).
    fn last_request(&self) -> Option<serde_json::Value> {
        None
    }
    /// The counters of a simulator on [`SimServer`] (streams accepted and open, what it
    /// received), for conformance suites that hold simulators only by this trait.
    fn stats(&self) -> Option<&Stats> {
        None
    }
}

/// Latencies and faults shared by all simulators; each uses the knobs of its own service.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// STT: from end of speech to the endpointed final result.
    pub stt_final: Duration,
    /// STT fault: close the stream after this much audio.
    pub stt_fail_after_audio_ms: Option<u64>,
    /// STT quirk: the closing usage figure is this percentage of the audio received (a provider
    /// that bills less, or more, than the audio sent: reconciliation tests).
    pub stt_billed_pct: u32,
    pub llm_first_token: Duration,
    pub llm_tokens_per_sec: f64,
    /// LLM fault: cut each stream after this many tokens.
    pub llm_drop_after_tokens: Option<usize>,
    pub tts_first_audio: Duration,
    pub tts_ms_per_char: u32,
    /// TTS fault: fail a stream once this many characters were voiced.
    pub tts_fail_after_chars: Option<u64>,
}

impl Tuning {
    /// The same latencies without any fault (for simulators that must stay healthy).
    pub fn without_faults(&self) -> Self {
        Self { stt_fail_after_audio_ms: None, llm_drop_after_tokens: None, tts_fail_after_chars: None, ..self.clone() }
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            stt_final: Duration::from_millis(300),
            stt_fail_after_audio_ms: None,
            stt_billed_pct: 100,
            llm_first_token: Duration::from_millis(350),
            llm_tokens_per_sec: 60.0,
            llm_drop_after_tokens: None,
            tts_first_audio: Duration::from_millis(150),
            tts_ms_per_char: 50,
            tts_fail_after_chars: None,
        }
    }
}

/// Accepts loopback connections until `stop`, handing each to `serve` with a child token (so
/// dropping the simulator ends its connections too). Accept errors (out of file descriptors)
/// are logged and retried after a pause instead of ending the simulator.
pub async fn accept_loop<F, Fut>(
    listener: tokio::net::TcpListener,
    sim: &'static str,
    stop: tokio_util::sync::CancellationToken,
    mut serve: F,
) where
    F: FnMut(tokio::net::TcpStream, tokio_util::sync::CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, sim, "simulator: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, stop.child_token()));
    }
}

/// What starting one simulator returns.
pub type Started = std::io::Result<Box<dyn RunningSim>>;
/// A boxed start future, so registries can be plain tables of functions.
pub type StartFuture = Pin<Box<dyn Future<Output = Started> + Send>>;

/// Accepted API keys. Clones share one set; `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub struct SimKeys(Arc<RwLock<Vec<String>>>);

impl SimKeys {
    /// Accept `key` from now on (e.g. a key created mid-test through the API).
    pub fn add(&self, key: impl Into<String>) {
        if let Ok(mut keys) = self.0.write() {
            keys.push(key.into());
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.read().map(|keys| keys.iter().any(|k| k == key)).unwrap_or(false)
    }

    /// The first accepted key matching `pred`: for schemes where the request proves a key
    /// without carrying it (AWS SigV4 names only the access key id).
    pub fn find(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.0.read().ok().and_then(|keys| keys.iter().find(|k| pred(k)).cloned())
    }
}

impl From<Vec<String>> for SimKeys {
    fn from(keys: Vec<String>) -> Self {
        Self(Arc::new(RwLock::new(keys)))
    }
}

impl From<&[&str]> for SimKeys {
    fn from(keys: &[&str]) -> Self {
        keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().into()
    }
}

impl std::fmt::Debug for SimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|k| k.len()).unwrap_or(0);
        write!(f, "SimKeys({n} keys)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_and_debug_hides() {
        let keys = SimKeys::from(vec!["sk-one".to_string()]);
        let shared = keys.clone();
        shared.add("sk-two");
        assert!(keys.contains("sk-one") && keys.contains("sk-two") && !keys.contains("sk-three"));
        assert_eq!(format!("{keys:?}"), "SimKeys(2 keys)");
    }
}
