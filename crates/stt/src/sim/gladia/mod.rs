//! Gladia live v2 simulator (protocols/stt.md B7): `POST /v2/live` creates a session and hands
//! out a WebSocket URL pointing back at this server; `GET /v2/pre-recorded` serves key checks.
//! A bad key is refused at the HTTP step with 401 and Gladia's JSON error body.

mod conn;

use super::wsconn::{HttpServer, Stats};
use super::{Catalog, SimKeys};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Behaviour knobs; defaults are close to the real service.
#[derive(Debug, Clone)]
pub struct GladiaSimConfig {
    /// Accepted `x-gladia-key` values.
    pub keys: SimKeys,
    /// From detected end of speech to the final transcript.
    pub final_delay: Duration,
    /// Audio between partial transcripts while speech is ongoing.
    pub interim_every_ms: u64,
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio, an `error` message and close 1011.
    pub fail_after_audio_ms: Option<u64>,
}

impl Default for GladiaSimConfig {
    fn default() -> Self {
        Self {
            keys: SimKeys::default(),
            final_delay: Duration::from_millis(300),
            interim_every_ms: 400,
            catalog: Arc::new(Catalog::empty()),
            fail_after_audio_ms: None,
        }
    }
}

/// A session created by `POST /v2/live`, waiting for (or serving) its WebSocket.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub key: String,
    pub sample_rate: u32,
    pub endpointing_s: f64,
    pub language: String,
    pub partials: bool,
    pub speech_events: bool,
    pub post_processing: bool,
    pub lifecycle: bool,
    pub acknowledgments: bool,
}

pub(crate) struct Shared {
    cfg: GladiaSimConfig,
    stats: Stats,
    stop: CancellationToken,
    sessions: Mutex<HashMap<String, Session>>,
    ws_base: Mutex<Option<Url>>,
}

/// A running simulator; stops on drop.
pub struct GladiaSim {
    server: HttpServer,
    base_url: Url,
    shared: Arc<Shared>,
}

impl GladiaSim {
    pub async fn start(cfg: GladiaSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    pub async fn start_on(listener: TcpListener, cfg: GladiaSimConfig) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            stats: Stats::new(cfg.keys.clone()),
            cfg,
            stop: stop.clone(),
            sessions: Mutex::new(HashMap::new()),
            ws_base: Mutex::new(None),
        });
        let app = Router::new()
            .route("/v2/live", get(live_ws).post(init))
            .route("/v2/pre-recorded", get(pre_recorded))
            .with_state(shared.clone());
        let server = HttpServer::start(listener, app, stop, "gladia")?;
        if let Ok(mut base) = shared.ws_base.lock() {
            *base = Some(server.url("ws")?);
        }
        let base_url = server.url("http")?;
        Ok(Self { server, base_url, shared })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    pub fn keys(&self) -> &SimKeys {
        &self.shared.cfg.keys
    }

    /// Key of every accepted stream, in order (test inspection only).
    pub fn seen_keys(&self) -> Vec<String> {
        self.shared.stats.seen_keys()
    }

    /// WebSocket streams accepted since start.
    pub fn connections(&self) -> usize {
        self.shared.stats.connections()
    }

    /// Sessions created by `POST /v2/live` and not yet connected.
    pub fn pending_sessions(&self) -> usize {
        self.shared.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl simkit::RunningSim for GladiaSim {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }
    fn seen_keys(&self) -> Vec<String> {
        GladiaSim::seen_keys(self)
    }
}

/// Registry entry.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning, catalog: Arc<Catalog>) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = GladiaSim::start(GladiaSimConfig {
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

/// Gladia's HTTP error body.
fn error(status: StatusCode, path: &str, message: &str) -> Response {
    let body = json!({
        "timestamp": conn::rfc3339_now(),
        "path": path,
        "request_id": format!("G-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        "statusCode": status.as_u16(),
        "message": message,
    });
    (status, Json(body)).into_response()
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let key = headers.get("x-gladia-key").and_then(|v| v.to_str().ok()).map(str::trim)?;
    shared.stats.keys.contains(key).then(|| key.to_string())
}

async fn pre_recorded(State(shared): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    if authorized(&shared, &headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, uri.path(), "Invalid or missing API key");
    }
    Json(json!({"first": format!("{uri}"), "current": format!("{uri}"), "next": null, "items": []})).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InitBody {
    encoding: Option<String>,
    bit_depth: Option<u32>,
    sample_rate: Option<u32>,
    channels: Option<u32>,
    model: Option<String>,
    endpointing: Option<f64>,
    language_config: Option<LanguageConfig>,
    messages_config: Option<MessagesConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LanguageConfig {
    languages: Vec<String>,
}

/// Gladia's defaults: partials off, the rest on.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct MessagesConfig {
    receive_partial_transcripts: bool,
    receive_speech_events: bool,
    receive_post_processing_events: bool,
    receive_lifecycle_events: bool,
    receive_acknowledgments: bool,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        Self {
            receive_partial_transcripts: false,
            receive_speech_events: true,
            receive_post_processing_events: true,
            receive_lifecycle_events: false,
            receive_acknowledgments: true,
        }
    }
}

async fn init(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    const PATH: &str = "/v2/live";
    let Some(key) = authorized(&shared, &headers) else {
        return error(StatusCode::UNAUTHORIZED, PATH, "Invalid or missing API key");
    };
    let bad = |msg: &str| error(StatusCode::BAD_REQUEST, PATH, msg);
    let Ok(body) = serde_json::from_slice::<InitBody>(&body) else {
        return bad("body must be a JSON object");
    };
    if body.encoding.as_deref().unwrap_or("wav/pcm") != "wav/pcm" || body.bit_depth.unwrap_or(16) != 16 {
        return bad("the simulator decodes encoding wav/pcm at bit_depth 16 only");
    }
    if body.channels.unwrap_or(1) != 1 {
        return bad("the simulator supports channels 1 only");
    }
    let sample_rate = body.sample_rate.unwrap_or(16000);
    if ![8000, 16000, 32000, 44100, 48000].contains(&sample_rate) {
        return bad("sample_rate must be one of 8000, 16000, 32000, 44100, 48000");
    }
    if body.model.as_deref().is_some_and(|m| !m.starts_with("solaria")) {
        return bad("model must be solaria-1");
    }
    let endpointing_s = body.endpointing.unwrap_or(0.05);
    if !(0.01..=10.0).contains(&endpointing_s) {
        return bad("endpointing must be between 0.01 and 10 seconds");
    }
    let msgs = body.messages_config.unwrap_or_default();
    let id = uuid::Uuid::new_v4().to_string();
    let session = Session {
        id: id.clone(),
        key,
        sample_rate,
        endpointing_s,
        language: body.language_config.and_then(|l| l.languages.into_iter().next()).unwrap_or_else(|| "en".into()),
        partials: msgs.receive_partial_transcripts,
        speech_events: msgs.receive_speech_events,
        post_processing: msgs.receive_post_processing_events,
        lifecycle: msgs.receive_lifecycle_events,
        acknowledgments: msgs.receive_acknowledgments,
    };
    let Some(mut url) = shared.ws_base.lock().ok().and_then(|b| b.clone()) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, PATH, "simulator not ready");
    };
    url.set_path(PATH);
    url.query_pairs_mut().append_pair("token", &id);
    if let Ok(mut sessions) = shared.sessions.lock() {
        sessions.insert(id.clone(), session);
    }
    (StatusCode::CREATED, Json(json!({"id": id, "url": url.as_str()}))).into_response()
}

async fn live_ws(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery, upgrade: WebSocketUpgrade) -> Response {
    let token = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let session = token.and_then(|t| shared.sessions.lock().ok().and_then(|mut s| s.remove(&t)));
    let Some(session) = session else {
        return error(StatusCode::NOT_FOUND, "/v2/live", "Session not found or already used");
    };
    upgrade.on_upgrade(move |ws| async move {
        let _open = shared.stats.accept(&session.key);
        conn::run(ws, session, &shared).await;
    })
}
