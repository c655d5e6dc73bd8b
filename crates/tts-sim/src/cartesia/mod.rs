//! Cartesia simulator (protocols/tts.md C3): `GET /voices` for key checks and the
//! `/tts/websocket` context protocol on one loopback port.

mod conn;

use crate::Voicing;
use simkit::{Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Behaviour knobs; defaults are close to a fast real provider. The fault is an `error`
/// message, then close 1011.
#[derive(Debug, Clone)]
pub struct CartesiaSimConfig {
    pub voicing: Voicing,
    /// How long buffered text without a sentence end waits for more (`max_buffer_delay_ms`
    /// in a request overrides it).
    pub max_buffer_delay: Duration,
}

impl Default for CartesiaSimConfig {
    fn default() -> Self {
        let voicing = Voicing { first_audio_delay: Duration::from_millis(120), ..Voicing::default() };
        Self { voicing, max_buffer_delay: Duration::from_millis(3000) }
    }
}

/// A running Cartesia simulator: `CartesiaSim::start(keys, config)`; stops on drop. Its counters
/// are [`SimServer`]'s (`received` counts characters of text).
pub type CartesiaSim = SimServer<CartesiaSimConfig>;

const VOICE_LIST: &str = r#"{"data":[{"id":"f786b574-daa5-4673-aa0c-cbe3e8534c02","name":"Katie","description":"Simulated voice","language":"en","is_public":true}],"has_more":false,"next_page":null}"#;

fn error_body(status: u16, title: &str, message: &str, code: &str) -> Reply {
    let body = serde_json::json!({
        "error_code": code, "title": title, "message": message,
        "request_id": uuid::Uuid::new_v4().to_string(),
    });
    Reply::json(status, body.to_string())
}

impl Service for CartesiaSimConfig {
    /// Nothing beyond the checks the upgrade already passed.
    type Session = ();

    const NAME: &'static str = "cartesia";

    fn route(&self, head: &Request, stats: &Stats) -> Route<()> {
        let ws = match (head.method.as_str(), head.path.trim_end_matches('/')) {
            ("GET", "/voices") => false,
            ("GET", "/tts/websocket") => true,
            _ => return Route::Reply(error_body(404, "Not Found", "No such route", "not_found")),
        };
        // Browsers cannot set headers, so the socket also takes the key and version as query.
        let query_key = if ws { head.query_param("api_key") } else { None };
        let key =
            head.header("x-api-key").or_else(|| head.header_key("authorization", "Bearer ")).or(query_key.as_deref());
        let Some(key) = key else {
            return Route::Reply(error_body(401, "Unauthorized", "Missing API key", "missing_api_key"));
        };
        if !stats.check_key(key) {
            return Route::Reply(error_body(401, "Unauthorized", "Invalid API key", "invalid_api_key"));
        }
        let version =
            head.header("cartesia-version").map(str::to_string).or_else(|| head.query_param("cartesia_version"));
        if version.as_deref().is_none_or(str::is_empty) {
            return Route::Reply(error_body(
                400,
                "Bad Request",
                "Missing Cartesia-Version header or cartesia_version query parameter",
                "missing_version",
            ));
        }
        match ws {
            false => Route::Reply(Reply::json(200, VOICE_LIST)),
            true if head.is_websocket() => Route::Upgrade(()),
            true => Route::Reply(error_body(426, "Upgrade Required", "Use a WebSocket client", "upgrade_required")),
        }
    }

    async fn serve(self: Arc<Self>, ws: Ws, (): (), stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        conn::run(ws, &self, &stats, stop).await;
    }
}

#[cfg(test)]
mod tests;
