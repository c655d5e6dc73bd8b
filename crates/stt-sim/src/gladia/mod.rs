//! Gladia live v2 simulator (protocols/stt.md B7): `POST /v2/live` creates a session and hands
//! out a WebSocket URL pointing back at this server; `GET /v2/pre-recorded` serves key checks.
//! A bad key is refused at the HTTP step with 401 and Gladia's JSON error body.

mod conn;

use crate::audio::rfc3339_now;
use crate::SimConfig;
use serde::Deserialize;
use serde_json::json;
use simkit::{Reply, Request, Route, Service, Stats, Ws};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Audio between partial transcripts while speech is ongoing.
const INTERIM_EVERY_MS: u64 = 400;
const PATH: &str = "/v2/live";

/// The Gladia live simulator.
pub struct GladiaSim {
    cfg: SimConfig,
    /// Sessions created by `POST /v2/live` and not yet connected, by token.
    sessions: Mutex<HashMap<String, Session>>,
}

impl From<SimConfig> for GladiaSim {
    fn from(cfg: SimConfig) -> Self {
        Self { cfg, sessions: Mutex::new(HashMap::new()) }
    }
}

impl GladiaSim {
    /// Sessions created by `POST /v2/live` and not yet connected.
    pub fn pending_sessions(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// A session created by `POST /v2/live`, waiting for (or serving) its WebSocket.
#[derive(Debug, Clone)]
pub struct Session {
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

impl Service for GladiaSim {
    type Session = Session;
    const NAME: &'static str = "gladia";
    const SCHEME: &'static str = "http";

    fn route(&self, req: &Request, _: &Stats) -> Route<Session> {
        let key = req.header("x-gladia-key").map(str::trim).filter(|k| self.cfg.keys.contains(k));
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", PATH) if req.is_websocket() => {
                let token = req.query_param("token");
                let session = token.and_then(|t| self.sessions.lock().ok().and_then(|mut s| s.remove(&t)));
                match session {
                    Some(s) => Route::Upgrade(s),
                    None => Route::Reply(error(404, PATH, "Session not found or already used")),
                }
            }
            (_, path @ (PATH | "/v2/pre-recorded")) if key.is_none() => {
                Route::Reply(error(401, path, "Invalid or missing API key"))
            }
            ("POST", PATH) => Route::Reply(self.init(req, key.unwrap_or_default())),
            ("GET", "/v2/pre-recorded") => {
                let uri = format!("{}{}{}", req.path, if req.query.is_empty() { "" } else { "?" }, req.query);
                Route::Reply(Reply::json(
                    200,
                    json!({"first": uri, "current": uri, "next": null, "items": []}).to_string(),
                ))
            }
            (_, path) => Route::Reply(error(404, path, "Not found")),
        }
    }

    async fn serve(self: Arc<Self>, mut ws: Ws, session: Session, stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.accept(&session.key);
        let mut p = conn::Conn::new(session, &self.cfg, stats.clone());
        simkit::run(&mut ws, &mut p, &stop).await;
    }
}

/// Gladia's HTTP error body.
fn error(status: u16, path: &str, message: &str) -> Reply {
    let body = json!({
        "timestamp": rfc3339_now(),
        "path": path,
        "request_id": format!("G-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        "statusCode": status,
        "message": message,
    });
    Reply::json(status, body.to_string())
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

impl GladiaSim {
    /// `POST /v2/live` from an authorized key: check the body, park the session, hand out its URL.
    fn init(&self, req: &Request, key: &str) -> Reply {
        let bad = |msg: &str| error(400, PATH, msg);
        let Ok(body) = serde_json::from_slice::<InitBody>(&req.body) else {
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
            key: key.to_string(),
            sample_rate,
            endpointing_s,
            language: body.language_config.and_then(|l| l.languages.into_iter().next()).unwrap_or_else(|| "en".into()),
            partials: msgs.receive_partial_transcripts,
            speech_events: msgs.receive_speech_events,
            post_processing: msgs.receive_post_processing_events,
            lifecycle: msgs.receive_lifecycle_events,
            acknowledgments: msgs.receive_acknowledgments,
        };
        let Some(addr) = req.local_addr else {
            return error(500, PATH, "simulator not ready");
        };
        let url = format!("ws://{addr}{PATH}?token={id}");
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(id.clone(), session);
        }
        Reply::json(201, json!({"id": id, "url": url}).to_string())
    }
}
