//! ElevenLabs Scribe realtime simulator (protocols/stt.md B4): `GET /v1/models` for key checks
//! and the `/v1/speech-to-text/realtime` WebSocket, refusing a bad key the way Scribe does (an
//! `auth_error` message, then close) and transcribing through the shared recognizer.

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
pub struct ElevenLabsSimConfig {
    /// Accepted `xi-api-key` values.
    pub keys: SimKeys,
    /// From the VAD commit point to its `committed_transcript`.
    pub final_delay: Duration,
    /// Audio between `partial_transcript`s while speech is ongoing.
    pub interim_every_ms: u64,
    pub catalog: Arc<Catalog>,
    /// Fault injection: after this much audio, a `transcriber_error` message and close 1011.
    pub fail_after_audio_ms: Option<u64>,
}

impl Default for ElevenLabsSimConfig {
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
    cfg: ElevenLabsSimConfig,
    stats: Stats,
    stop: CancellationToken,
}

/// A running simulator; stops on drop.
pub struct ElevenLabsSim {
    server: HttpServer,
    base_url: Url,
    shared: Arc<Shared>,
}

impl ElevenLabsSim {
    pub async fn start(cfg: ElevenLabsSimConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    pub async fn start_on(listener: TcpListener, cfg: ElevenLabsSimConfig) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared { stats: Stats::new(cfg.keys.clone()), cfg, stop: stop.clone() });
        let app = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/speech-to-text/realtime", get(realtime))
            .with_state(shared.clone());
        let server = HttpServer::start(listener, app, stop, "elevenlabs-stt")?;
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

impl simkit::RunningSim for ElevenLabsSim {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }
    fn seen_keys(&self) -> Vec<String> {
        ElevenLabsSim::seen_keys(self)
    }
}

/// Registry entry.
pub(crate) fn start(keys: SimKeys, t: simkit::Tuning, catalog: Arc<Catalog>) -> simkit::StartFuture {
    Box::pin(async move {
        let sim = ElevenLabsSim::start(ElevenLabsSimConfig {
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

fn key_of(headers: &HeaderMap) -> Option<&str> {
    headers.get("xi-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// ElevenLabs' 401 for an unknown key.
fn invalid_key() -> Response {
    let body = json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !key_of(&headers).is_some_and(|k| shared.stats.keys.contains(k)) {
        return invalid_key();
    }
    Json(json!([{
        "model_id": "scribe_v2_realtime",
        "name": "Scribe v2 Realtime",
        "can_do_text_to_speech": false,
        "languages": [{"language_id": "en", "name": "English"}],
    }]))
    .into_response()
}

/// What the realtime query asked for; `Err` is an `input_error` text.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub model_id: String,
    pub sample_rate: u32,
    pub vad: bool,
    pub vad_silence_s: f64,
    pub language_code: Option<String>,
    pub include_timestamps: bool,
}

fn parse_query(query: &str) -> Result<Session, String> {
    let mut s = Session {
        model_id: String::new(),
        sample_rate: 16000,
        vad: false,
        vad_silence_s: 1.5,
        language_code: None,
        include_timestamps: false,
    };
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "model_id" => s.model_id = v.into_owned(),
            "audio_format" => {
                s.sample_rate = v
                    .strip_prefix("pcm_")
                    .and_then(|r| r.parse().ok())
                    .filter(|r| [8000, 16000, 22050, 24000, 44100, 48000].contains(r))
                    .ok_or_else(|| format!("unsupported audio_format {v:?} (the simulator decodes pcm_<rate> only)"))?
            }
            "commit_strategy" => match v.as_ref() {
                "manual" => s.vad = false,
                "vad" => s.vad = true,
                other => return Err(format!("invalid commit_strategy {other:?}")),
            },
            "vad_silence_threshold_secs" => {
                s.vad_silence_s = v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| (0.1..=10.0).contains(x))
                    .ok_or("vad_silence_threshold_secs must be a number of seconds")?
            }
            "language_code" => s.language_code = Some(v.into_owned()),
            "include_timestamps" => s.include_timestamps = v == "true",
            _ => {}
        }
    }
    if !s.model_id.starts_with("scribe") || !s.model_id.ends_with("realtime") {
        return Err(format!("model_id {:?} is not a realtime model", s.model_id));
    }
    Ok(s)
}

async fn realtime(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let key = key_of(&headers).filter(|k| shared.stats.keys.contains(k)).map(str::to_string);
    let session = parse_query(query.as_deref().unwrap_or(""));
    upgrade.on_upgrade(move |ws| async move {
        match (key, session) {
            (None, _) => conn::refuse(ws, "auth_error", "Invalid API key").await,
            (Some(_), Err(e)) => conn::refuse(ws, "input_error", &e).await,
            (Some(key), Ok(session)) => {
                let _open = shared.stats.accept(&key);
                conn::run(ws, session, &shared).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let s = parse_query(
            "model_id=scribe_v2_realtime&audio_format=pcm_8000&commit_strategy=vad&vad_silence_threshold_secs=0.5",
        )
        .unwrap();
        assert_eq!((s.sample_rate, s.vad, s.vad_silence_s), (8000, true, 0.5));
        assert!(parse_query("model_id=scribe_v2_realtime&audio_format=mp3").is_err());
        assert!(parse_query("model_id=eleven_flash_v2_5").is_err());
    }
}
