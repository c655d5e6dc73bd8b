//! Azure Speech real-time recognition simulator (protocols/aws-azure.md Z1) on a loopback port:
//! the USP WebSocket (key or issued token, `X-ConnectionId`, speech.config/context, WAV header,
//! turns, close codes) and the `issueToken` endpoint used to check keys. Results come from the
//! shared recognizer over a [`Catalog`].

mod conn;

use super::{Catalog, SimKeys};
use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// The body Azure's gateway sends with a 401 for a bad key or wrong region.
const ACCESS_DENIED: &str = r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#;

/// Behaviour knobs; defaults are close to the real service.
#[derive(Debug, Clone)]
pub struct AzureSttSimConfig {
    /// Accepted Speech resource keys; tests may add keys while running.
    pub keys: SimKeys,
    /// From detected end of a phrase to its `speech.phrase`.
    pub final_delay: Duration,
    /// Audio between `speech.hypothesis` messages while speech goes on.
    pub interim_every_ms: u64,
    /// Silence that ends a phrase (query `segmentationSilenceTimeoutMs` overrides).
    pub segmentation_silence_ms: u32,
    /// Silence after the last phrase before `speech.endDetected`.
    pub end_silence_ms: u32,
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio on a connection, close 1011.
    pub fail_after_audio_ms: Option<u64>,
}

impl Default for AzureSttSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            final_delay: Duration::from_millis(300),
            interim_every_ms: 300,
            segmentation_silence_ms: 500,
            end_silence_ms: 1000,
            catalog: Arc::new(Catalog::empty()),
            fail_after_audio_ms: None,
        }
    }
}

/// A running simulator; stops (listener and every connection) on drop.
pub struct AzureSttSim {
    addr: SocketAddr,
    base_url: Url,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

struct Shared {
    cfg: AzureSttSimConfig,
    seen_keys: Mutex<Vec<String>>,
    /// Bearer tokens handed out by `issueToken`, with the key each stands for.
    tokens: Mutex<HashMap<String, String>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
    audio_bytes: AtomicU64,
    turns: AtomicU64,
    stop: CancellationToken,
}

impl Shared {
    fn saw_key(&self, key: &str) {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
    }

    /// The key behind the request's subscription-key header or issued bearer token.
    fn authorize(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(key) = headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok()) {
            return self.cfg.keys.contains(key).then(|| key.to_string());
        }
        let token = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?;
        self.tokens.lock().ok()?.get(token.trim()).cloned().filter(|key| self.cfg.keys.contains(key))
    }
}

impl AzureSttSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: AzureSttSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound (a standalone sim process on a fixed port).
    pub async fn start_on(listener: TcpListener, cfg: AzureSttSimConfig) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("ws://{addr}")).map_err(std::io::Error::other)?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            cfg,
            seen_keys: Mutex::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            audio_bytes: AtomicU64::new(0),
            turns: AtomicU64::new(0),
            stop: stop.clone(),
        });
        let app = Router::new()
            .route("/sts/v1.0/issueToken", post(issue_token))
            .route("/speech/recognition/{mode}/cognitiveservices/v1", any(recognize_v1))
            .route("/stt/speech/universal/v2", any(recognize_v2))
            .with_state(shared.clone());
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(error = %e, "azure stt sim stopped");
            }
        });
        Ok(Self { addr, base_url, shared, stop })
    }

    /// `ws://127.0.0.1:PORT`, to pass as the adapter's base URL.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn keys(&self) -> &SimKeys {
        &self.shared.cfg.keys
    }

    /// Every key presented (token requests and upgrades), in order. Test inspection only.
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// WebSocket connections accepted since start.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// PCM bytes received (WAV headers excluded) over all connections.
    pub fn audio_bytes_received(&self) -> u64 {
        self.shared.audio_bytes.load(Ordering::Relaxed)
    }

    /// Turns (request ids with a WAV header) started over all connections.
    pub fn turns(&self) -> u64 {
        self.shared.turns.load(Ordering::Relaxed)
    }
}

impl simkit::RunningSim for AzureSttSim {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }
    fn seen_keys(&self) -> Vec<String> {
        AzureSttSim::seen_keys(self)
    }
}

impl Drop for AzureSttSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Registry entry: an Azure STT simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning, catalog: Arc<Catalog>) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = AzureSttSim::start(AzureSttSimConfig {
            keys,
            final_delay: t.stt_final,
            catalog,
            fail_after_audio_ms: t.stt_fail_after_audio_ms,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

fn denied() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/json")], ACCESS_DENIED).into_response()
}

/// `POST /sts/v1.0/issueToken`: a JWT-shaped token valid for the key, or 401.
async fn issue_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let key = headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    shared.saw_key(key);
    if !shared.cfg.keys.contains(key) {
        return denied();
    }
    let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.{}", usp::new_id(), usp::new_id());
    if let Ok(mut tokens) = shared.tokens.lock() {
        tokens.insert(token.clone(), key.to_string());
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=us-ascii")], token).into_response()
}

async fn recognize_v1(
    State(shared): State<Arc<Shared>>,
    Path(mode): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !matches!(mode.as_str(), "conversation" | "interactive" | "dictation") {
        return StatusCode::NOT_FOUND.into_response();
    }
    upgrade(shared, query, headers, ws)
}

async fn recognize_v2(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    upgrade(shared, query, headers, ws)
}

/// Auth, connection id and query checks, answered like the service, then the USP session.
fn upgrade(
    shared: Arc<Shared>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(key) = headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok()) {
        shared.saw_key(key);
    }
    if shared.authorize(&headers).is_none() {
        return denied();
    }
    let connection_id = headers.get("x-connectionid").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !usp::is_id(connection_id) {
        return (StatusCode::BAD_REQUEST, "X-ConnectionId header is missing or invalid.").into_response();
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let detailed = match query.get("format").map(String::as_str) {
        None | Some("simple") => false,
        Some("detailed") => true,
        Some(_) => return (StatusCode::BAD_REQUEST, "Invalid format parameter.").into_response(),
    };
    let mut segmentation_ms = shared.cfg.segmentation_silence_ms;
    if let Some(v) = query.get("segmentationSilenceTimeoutMs") {
        match v.parse::<u32>() {
            Ok(ms) if (100..=5000).contains(&ms) => segmentation_ms = ms,
            _ => return (StatusCode::BAD_REQUEST, "Invalid segmentationSilenceTimeoutMs.").into_response(),
        }
    }
    let opts = conn::Opts { detailed, segmentation_ms };
    ws.on_upgrade(move |socket| async move {
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        shared.open.fetch_add(1, Ordering::Relaxed);
        conn::run(socket, opts, &shared).await;
        shared.open.fetch_sub(1, Ordering::Relaxed);
    })
}

#[cfg(test)]
mod tests;
