//! Cartesia STT simulator (protocols/stt.md B5): `GET /voices` for key checks and the
//! `/stt/websocket` stream, refusing a bad key with HTTP 401 at the upgrade and transcribing
//! through the shared recognizer.

mod conn;

use super::wsconn::{HttpServer, Stats};
use super::{Catalog, SimKeys};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Behaviour knobs; defaults are close to the real service.
#[derive(Debug, Clone)]
pub struct CartesiaSimConfig {
    /// Accepted `X-API-Key` values.
    pub keys: SimKeys,
    /// From detected end of speech to its final transcript.
    pub final_delay: Duration,
    /// Audio between interim transcripts (`ink-2` only; ink-whisper sends finals only).
    pub interim_every_ms: u64,
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio, an `error` message and close 1011.
    pub fail_after_audio_ms: Option<u64>,
}

impl Default for CartesiaSimConfig {
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

pub(crate) struct Shared {
    cfg: CartesiaSimConfig,
    stats: Stats,
    stop: CancellationToken,
}

/// A running simulator; stops on drop.
pub struct CartesiaSim {
    server: HttpServer,
    base_url: Url,
    shared: Arc<Shared>,
}

impl CartesiaSim {
    pub async fn start(cfg: CartesiaSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    pub async fn start_on(listener: TcpListener, cfg: CartesiaSimConfig) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared { stats: Stats::new(cfg.keys.clone()), cfg, stop: stop.clone() });
        let app = Router::new()
            .route("/voices", get(voices))
            .route("/stt/websocket", get(stt_websocket))
            .with_state(shared.clone());
        let server = HttpServer::start(listener, app, stop, "cartesia-stt")?;
        let base_url = server.url("ws")?;
        Ok(Self { server, base_url, shared })
    }

    /// `ws://127.0.0.1:PORT`.
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

    pub fn connections(&self) -> usize {
        self.shared.stats.connections()
    }

    pub fn open_connections(&self) -> usize {
        self.shared.stats.open_connections()
    }
}

impl simkit::RunningSim for CartesiaSim {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }
    fn seen_keys(&self) -> Vec<String> {
        CartesiaSim::seen_keys(self)
    }
}

/// Registry entry.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning, catalog: Arc<Catalog>) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = CartesiaSim::start(CartesiaSimConfig {
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

/// Cartesia's error body (`type`, `title`, `message`, `status_code` required).
pub(crate) fn error_body(status: u16, title: &str, message: &str, error_code: &str) -> serde_json::Value {
    json!({
        "type": "error",
        "title": title,
        "message": message,
        "error_code": error_code,
        "status_code": status,
        "request_id": uuid::Uuid::new_v4().to_string(),
    })
}

fn refuse(status: StatusCode, title: &str, message: &str, code: &str) -> Response {
    (status, Json(error_body(status.as_u16(), title, message, code))).into_response()
}

/// An HTTP refusal: status, title, message, error code.
type Refusal = (StatusCode, &'static str, &'static str, &'static str);

fn refused((status, title, message, code): Refusal) -> Response {
    refuse(status, title, message, code)
}

/// Key and version from headers, or the query (`api_key`, `cartesia_version`) as browsers send them.
fn auth(shared: &Shared, headers: &HeaderMap, query: &[(String, String)]) -> Result<String, Refusal> {
    let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if h("cartesia-version").or(q("cartesia_version")).is_none_or(str::is_empty) {
        return Err((
            StatusCode::BAD_REQUEST,
            "Missing version",
            "Cartesia-Version header is required",
            "missing_version",
        ));
    }
    match h("x-api-key").or(q("api_key")).map(str::trim) {
        Some(k) if shared.stats.keys.contains(k) => Ok(k.to_string()),
        _ => Err((StatusCode::UNAUTHORIZED, "Unauthorized", "Invalid API key", "invalid_api_key")),
    }
}

fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect()
}

async fn voices(State(shared): State<Arc<Shared>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = auth(&shared, &headers, &pairs(query.as_deref())) {
        return refused(r);
    }
    Json(json!({
        "data": [{"id": "a0e99841-438c-4a64-b679-ae501e7d6091", "name": "Sim Voice", "language": "en", "is_public": true}],
        "has_more": false,
    }))
    .into_response()
}

/// What the stream query asked for.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub model: String,
    pub sample_rate: u32,
    pub language: String,
    /// `max_silence_duration_secs`: silence that ends an utterance.
    pub max_silence_s: f64,
}

fn parse_session(query: &[(String, String)]) -> Result<Session, String> {
    let mut s = Session { model: String::new(), sample_rate: 0, language: "en".into(), max_silence_s: 0.3 };
    let mut encoding = None;
    for (k, v) in query {
        match k.as_str() {
            "model" => s.model = v.clone(),
            "encoding" => encoding = Some(v.as_str()),
            "sample_rate" => {
                s.sample_rate =
                    v.parse().ok().filter(|r| (8000..=48000).contains(r)).ok_or("sample_rate must be 8000..48000")?
            }
            "language" => s.language = v.clone(),
            "max_silence_duration_secs" => {
                s.max_silence_s = v
                    .parse()
                    .ok()
                    .filter(|x: &f64| (0.05..=10.0).contains(x))
                    .ok_or("invalid max_silence_duration_secs")?
            }
            _ => {}
        }
    }
    if !(s.model.starts_with("ink-whisper") || s.model.starts_with("ink-2")) {
        return Err("The model is not valid, make sure it is a valid model ID.".into());
    }
    match encoding {
        Some("pcm_s16le") => {}
        Some(_) => return Err("the simulator decodes encoding=pcm_s16le only".into()),
        None => return Err("encoding is required".into()),
    }
    if s.sample_rate == 0 {
        return Err("sample_rate is required".into());
    }
    Ok(s)
}

async fn stt_websocket(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = pairs(query.as_deref());
    let key = match auth(&shared, &headers, &query) {
        Ok(k) => k,
        Err(r) => return refused(r),
    };
    let session = match parse_session(&query) {
        Ok(s) => s,
        Err(msg) => return refuse(StatusCode::BAD_REQUEST, "Invalid request", &msg, "invalid_request"),
    };
    upgrade.on_upgrade(move |ws| async move {
        let _open = shared.stats.accept(&key);
        conn::run(ws, session, &shared).await;
    })
}
