//! xAI streaming TTS simulator (protocols/llm-more.md E3.2) on a loopback port: the
//! `/v1/tts` WebSocket plus `GET /v1/api-key`, the REST call key checks use, on the same port.

mod conn;
mod rest;

use crate::Voicing;
use simkit::{Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Rates the simulator produces with `codec=pcm`.
const RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// Behaviour knobs; defaults are close to a fast real provider. The fault is an `error`
/// message, then close 1011.
#[derive(Debug, Clone, Default)]
pub struct XaiSimConfig {
    pub voicing: Voicing,
}

/// A running xAI simulator: `XaiSim::start(keys, config)`; stops on drop. `received` counts
/// characters of `text.delta`.
pub type XaiSim = SimServer<XaiSimConfig>;

impl Service for XaiSimConfig {
    type Session = Handshake;

    const NAME: &'static str = "xai";

    fn route(&self, req: &Request, stats: &Stats) -> Route<Handshake> {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v1/api-key") => Route::Reply(rest::api_key(req, stats)),
            (_, "/v1/tts") if req.is_websocket() => match check_upgrade(req, stats) {
                Ok(hs) => Route::Upgrade(hs),
                Err(reply) => Route::Reply(reply),
            },
            _ => Route::Reply(not_found()),
        }
    }

    async fn serve(self: Arc<Self>, ws: Ws, hs: Handshake, stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        conn::run(ws, hs, &self, &stats, stop).await;
    }
}

/// What the upgrade request asked for.
pub struct Handshake {
    pub(crate) sample_rate: u32,
    pub(crate) with_timestamps: bool,
}

/// xAI's bad-key body (HTTP 400, not 401), with the key shortened as xAI does.
pub(super) fn bad_key_body(key: &str) -> String {
    let head: String = key.chars().take(2).collect();
    let tail: String = key.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
    serde_json::json!({
        "code": "Client specified an invalid argument",
        "error": format!("Incorrect API key provided: {head}***{tail}. You can obtain an API key from https://console.x.ai."),
    })
    .to_string()
}

fn invalid(message: &str) -> Reply {
    Reply::json(400, serde_json::json!({"code": "Client specified an invalid argument", "error": message}).to_string())
}

fn not_found() -> Reply {
    Reply::json(404, serde_json::json!({"code": "Not found", "error": "No handler found for this path"}).to_string())
}

/// xAI's answer to a request without a key.
fn missing_key() -> Reply {
    Reply::json(401, serde_json::json!({"code": "Unauthenticated", "error": "Missing API key"}).to_string())
}

fn check_upgrade(req: &Request, stats: &Stats) -> Result<Handshake, Reply> {
    let Some(key) = req.header_key("authorization", "Bearer ") else {
        return Err(missing_key());
    };
    if !stats.check_key(key) {
        return Err(Reply::json(400, bad_key_body(key)));
    }
    let (mut voice, mut language) = (None, None);
    let (mut sample_rate, mut with_timestamps) = (24000, false);
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "voice" => voice = Some(v.to_string()),
            "language" => language = Some(v.to_string()),
            "codec" if v != "pcm" => return Err(invalid("the simulator produces codec=pcm only")),
            "sample_rate" => {
                sample_rate =
                    v.parse().ok().filter(|r| RATES.contains(r)).ok_or_else(|| invalid("unsupported sample_rate"))?
            }
            "with_timestamps" => with_timestamps = v == "true",
            _ => {}
        }
    }
    if voice.is_none_or(|v| v.is_empty()) {
        return Err(invalid("voice is required"));
    }
    if language.is_none_or(|l| l.is_empty()) {
        return Err(invalid("language is required (a BCP-47 code or auto)"));
    }
    Ok(Handshake { sample_rate, with_timestamps })
}
