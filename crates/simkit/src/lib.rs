//! Pieces shared by the provider simulators of the stt, tts and llm crates: the keys a
//! simulator accepts, the tuning knobs of `switchboard sim`, and [`RunningSim`], the type-erased
//! handle each crate's simulator registry hands back so the binary can start every simulator
//! without naming any.

mod stall;

pub use stall::{stall_like, Stalled};

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
