//! Cartesia STT simulator (protocols/stt.md B5): `GET /voices` for key checks and the
//! `/stt/websocket` stream, refusing a bad key with HTTP 401 at the upgrade and transcribing
//! through the shared recognizer.

mod conn;

use serde_json::json;
use simkit::{Reply, Request, Route, Service, Stats, Ws};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Audio between interim transcripts (`ink-2` only; ink-whisper sends finals only).
const INTERIM_EVERY_MS: u64 = 400;

simulator!(
    /// The Cartesia speech-to-text simulator.
    CartesiaSim
);

impl Service for CartesiaSim {
    /// The key the stream proved, and what it asked for.
    type Session = (String, Session);
    const NAME: &'static str = "cartesia-stt";

    fn route(&self, req: &Request, _: &Stats) -> Route<(String, Session)> {
        let query = req.query_pairs();
        let key = match self.auth(req, &query) {
            Ok(k) => k,
            Err(r) => return Route::Reply(refused(r)),
        };
        match req.path.as_str() {
            "/voices" => Route::Reply(Reply::json(
                200,
                json!({
                    "data": [{"id": "a0e99841-438c-4a64-b679-ae501e7d6091", "name": "Sim Voice", "language": "en", "is_public": true}],
                    "has_more": false,
                })
                .to_string(),
            )),
            "/stt/websocket" if req.is_websocket() => match parse_session(&query) {
                Ok(s) => Route::Upgrade((key, s)),
                Err(msg) => Route::Reply(refuse(400, "Invalid request", &msg, "invalid_request")),
            },
            _ => Route::Reply(refuse(404, "Not found", "Not found", "not_found")),
        }
    }

    async fn serve(
        self: Arc<Self>,
        mut ws: Ws,
        (key, session): (String, Session),
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) {
        let _open = stats.accept(&key);
        let mut p = conn::Conn::new(session, &self.cfg, stats.clone());
        simkit::run(&mut ws, &mut p, &stop).await;
    }
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

fn refuse(status: u16, title: &str, message: &str, code: &str) -> Reply {
    Reply::json(status, error_body(status, title, message, code).to_string())
}

/// An HTTP refusal: status, title, message, error code.
type Refusal = (u16, &'static str, &'static str, &'static str);

fn refused((status, title, message, code): Refusal) -> Reply {
    refuse(status, title, message, code)
}

impl CartesiaSim {
    /// Key and version from headers, or the query (`api_key`, `cartesia_version`) as browsers
    /// send them.
    fn auth(&self, req: &Request, query: &[(String, String)]) -> Result<String, Refusal> {
        let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if req.header("cartesia-version").or(q("cartesia_version")).is_none_or(str::is_empty) {
            return Err((400, "Missing version", "Cartesia-Version header is required", "missing_version"));
        }
        match req.header("x-api-key").or(q("api_key")).map(str::trim) {
            Some(k) if self.cfg.keys.contains(k) => Ok(k.to_string()),
            _ => Err((401, "Unauthorized", "Invalid API key", "invalid_api_key")),
        }
    }
}

/// What the stream query asked for.
#[derive(Debug, Clone)]
pub struct Session {
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
