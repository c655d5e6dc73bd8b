//! Deepgram Aura simulator (protocols/tts.md C5): `GET /v1/models` for key checks and the
//! `/v1/speak` websocket on one loopback port.

mod conn;

use crate::Voicing;
use simkit::{Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Behaviour knobs; defaults are close to a fast real provider. The fault is close 1011.
#[derive(Debug, Clone)]
pub struct DeepgramTtsSimConfig {
    pub voicing: Voicing,
    /// `Flush` messages allowed per rolling minute; more get a `Warning` and are ignored.
    pub flushes_per_minute: usize,
}

impl Default for DeepgramTtsSimConfig {
    fn default() -> Self {
        Self { voicing: Voicing::default(), flushes_per_minute: 20 }
    }
}

/// A running Deepgram Aura simulator: `DeepgramTtsSim::start(keys, config)`; stops on drop. Its counters
/// are [`SimServer`]'s (`received` counts characters of text).
pub type DeepgramTtsSim = SimServer<DeepgramTtsSimConfig>;

const RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];

const MODELS: &str = r#"{"stt":[],"tts":[{"name":"thalia","canonical_name":"aura-2-thalia-en","architecture":"aura-2","languages":["en"],"version":"2025-04-07.0","uuid":"ecb76e9d-f2cc-4bdd-9b6b-c8a8d1f6e8b4","metadata":{"accent":"American","tags":["feminine"]}}]}"#;

/// Deepgram's REST error shape.
fn error_body(status: u16, code: &str, message: &str) -> Reply {
    let body =
        serde_json::json!({"err_code": code, "err_msg": message, "request_id": uuid::Uuid::new_v4().to_string()});
    Reply::json(status, body.to_string())
}

/// What the upgrade request chose.
pub struct Handshake {
    pub(crate) model: String,
    pub(crate) sample_rate: u32,
}

impl Service for DeepgramTtsSimConfig {
    type Session = Handshake;

    const NAME: &'static str = "deepgram-tts";

    fn route(&self, head: &Request, stats: &Stats) -> Route<Handshake> {
        let ws = match (head.method.as_str(), head.path.trim_end_matches('/')) {
            ("GET", "/v1/models") => false,
            ("GET", "/v1/speak") => true,
            _ => return Route::Reply(error_body(404, "NOT_FOUND", "Not found.")),
        };
        let key = head.header_key("authorization", "Token ").or_else(|| head.header_key("authorization", "Bearer "));
        if !key.is_some_and(|k| stats.check_key(k)) {
            return Route::Reply(error_body(401, "INVALID_AUTH", "Invalid credentials."));
        }
        if !ws {
            return Route::Reply(Reply::json(200, MODELS));
        }
        let model = head.query_param("model").unwrap_or_else(|| "aura-asteria-en".into());
        // `aura-<voice>-<lang>` or `aura-2-<voice>-<lang>`: a voice must follow the family.
        let voice = model.strip_prefix("aura-2-").or_else(|| model.strip_prefix("aura-"));
        if voice.is_none_or(|v| v.is_empty() || v == "2") {
            return Route::Reply(error_body(
                400,
                "INVALID_QUERY_PARAMETER",
                "No such model/version combination found.",
            ));
        }
        if head.query_param("encoding").is_some_and(|e| e != "linear16") {
            return Route::Reply(error_body(400, "UNSUPPORTED_AUDIO_FORMAT", "The simulator produces linear16 only."));
        }
        let sample_rate = match head.query_param("sample_rate").map(|r| r.parse::<u32>()) {
            None => 24000,
            Some(Ok(r)) if RATES.contains(&r) => r,
            Some(_) => {
                return Route::Reply(error_body(
                    400,
                    "UNSUPPORTED_AUDIO_FORMAT",
                    "sample_rate must be 8000, 16000, 24000, 32000 or 48000 for linear16.",
                ))
            }
        };
        if !head.is_websocket() {
            return Route::Reply(error_body(426, "UPGRADE_REQUIRED", "Use a WebSocket client."));
        }
        Route::Upgrade(Handshake { model, sample_rate })
    }

    async fn serve(self: Arc<Self>, ws: Ws, hs: Handshake, stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        conn::run(ws, hs, &self, &stats, stop).await;
    }
}

#[cfg(test)]
mod tests;
