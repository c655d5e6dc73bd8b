//! Azure Speech synthesis simulator (protocols/aws-azure.md Z2.2, §K) on a loopback port: the
//! synthesis WebSocket (both SDK paths), and the voices list used to check keys.

mod conn;

use super::SimKeys;
use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// The body Azure's gateway sends with a 401 for a bad key or wrong region.
const ACCESS_DENIED: &str = r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#;

/// Behaviour knobs; defaults are close to a fast real service.
#[derive(Debug, Clone)]
pub struct AzureTtsSimConfig {
    pub keys: SimKeys,
    /// From an SSML request to its first audio.
    pub first_audio_delay: Duration,
    /// Audio length per character, so duration follows the text.
    pub ms_per_char: u32,
    /// Seconds of audio produced per wall-clock second.
    pub pace: f32,
    /// Target audio length of one `audio` frame.
    pub piece_ms: u32,
    /// Fault injection: close 1011 once this many characters of a connection have been voiced.
    pub fail_after_chars: Option<u64>,
}

impl Default for AzureTtsSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            first_audio_delay: Duration::from_millis(150),
            ms_per_char: 50,
            pace: 2.0,
            piece_ms: 100,
            fail_after_chars: None,
        }
    }
}

/// A running simulator; stops (listener and every connection) on drop.
pub struct AzureTtsSim {
    addr: SocketAddr,
    base_url: Url,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

pub(super) struct Shared {
    cfg: AzureTtsSimConfig,
    seen_keys: Mutex<Vec<String>>,
    /// The voice of every SSML request, in order.
    voices: Mutex<Vec<String>>,
    chars_received: AtomicU64,
    requests: AtomicU64,
    open: AtomicUsize,
    accepted: AtomicU64,
    stop: CancellationToken,
}

impl AzureTtsSim {
    /// Binds 127.0.0.1:0.
    pub async fn start(cfg: AzureTtsSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Serves on a listener the caller bound (a standalone sim process on a fixed port).
    pub async fn start_on(listener: TcpListener, cfg: AzureTtsSimConfig) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("ws://{addr}")).map_err(std::io::Error::other)?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            cfg,
            seen_keys: Mutex::new(Vec::new()),
            voices: Mutex::new(Vec::new()),
            chars_received: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            stop: stop.clone(),
        });
        let app = Router::new()
            .route("/cognitiveservices/voices/list", get(voices))
            .route("/cognitiveservices/websocket/v1", any(synthesize))
            .route("/tts/cognitiveservices/websocket/v1", any(synthesize))
            .with_state(shared.clone());
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(error = %e, "azure tts sim stopped");
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

    /// Every key presented (voices list and upgrades), in order. Test inspection only.
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// The voice named by every SSML request, in order.
    pub fn voices_requested(&self) -> Vec<String> {
        self.shared.voices.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Characters of SSML text received (markup excluded): what Azure bills.
    pub fn chars_received(&self) -> u64 {
        self.shared.chars_received.load(Ordering::Relaxed)
    }

    /// SSML requests received.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }
}

impl simkit::RunningSim for AzureTtsSim {
    fn base_url(&self) -> Url {
        AzureTtsSim::base_url(self)
    }
    fn seen_keys(&self) -> Vec<String> {
        AzureTtsSim::seen_keys(self)
    }
}

impl Drop for AzureTtsSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Registry entry: an Azure TTS simulator with `switchboard sim`'s tuning.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = AzureTtsSim::start(AzureTtsSimConfig {
            keys,
            first_audio_delay: t.tts_first_audio,
            ms_per_char: t.tts_ms_per_char,
            ..Default::default()
        })
        .await?;
        Ok(Box::new(sim) as Box<dyn simkit::RunningSim>)
    })
}

/// Records the presented key and says whether it is accepted.
fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let key = headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Ok(mut seen) = shared.seen_keys.lock() {
        seen.push(key.to_string());
    }
    shared.cfg.keys.contains(key)
}

fn denied() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/json")], ACCESS_DENIED).into_response()
}

/// `GET /cognitiveservices/voices/list`: a few entries in the service's shape.
async fn voices(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authorized(&shared, &headers) {
        return denied();
    }
    let voice = |short: &str, display: &str, gender: &str, locale: &str, locale_name: &str| {
        serde_json::json!({
            "Name": format!("Microsoft Server Speech Text to Speech Voice ({locale}, {})", short.rsplit('-').next().unwrap_or(short)),
            "DisplayName": display, "LocalName": display, "ShortName": short, "Gender": gender,
            "Locale": locale, "LocaleName": locale_name, "SampleRateHertz": "48000",
            "VoiceType": "Neural", "Status": "GA", "WordsPerMinute": "150",
        })
    };
    let list = serde_json::json!([
        voice("en-US-AvaMultilingualNeural", "Ava Multilingual", "Female", "en-US", "English (United States)"),
        voice("en-US-AndrewMultilingualNeural", "Andrew Multilingual", "Male", "en-US", "English (United States)"),
        voice("en-GB-SoniaNeural", "Sonia", "Female", "en-GB", "English (United Kingdom)"),
        voice("de-DE-KatjaNeural", "Katja", "Female", "de-DE", "German (Germany)"),
    ]);
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], list.to_string()).into_response()
}

async fn synthesize(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !authorized(&shared, &headers) {
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
    ws.on_upgrade(move |socket| async move {
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        shared.open.fetch_add(1, Ordering::Relaxed);
        conn::run(socket, &shared).await;
        shared.open.fetch_sub(1, Ordering::Relaxed);
    })
}

#[cfg(test)]
mod tests;
