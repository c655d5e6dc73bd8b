//! Azure Speech real-time recognition simulator (protocols/aws-azure.md Z1): the USP WebSocket
//! (key or issued token, `X-ConnectionId`, speech.config/context, WAV header, turns, close
//! codes) and the `issueToken` endpoint used to check keys. Results come from the shared
//! recognizer over a [`crate::Catalog`].

mod conn;

use crate::SimConfig;
use simkit::{Reply, Request, Route, Service, Stats, Ws};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The body Azure's gateway sends with a 401 for a bad key or wrong region.
const ACCESS_DENIED: &str = r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#;
/// Audio between `speech.hypothesis` messages while speech goes on.
const INTERIM_EVERY_MS: u64 = 300;
/// Silence that ends a phrase (query `segmentationSilenceTimeoutMs` overrides).
const SEGMENTATION_SILENCE_MS: u32 = 500;
/// Silence after the last phrase before `speech.endDetected`.
const END_SILENCE_MS: u32 = 1000;

/// The Azure Speech simulator.
pub struct AzureSttSim {
    cfg: SimConfig,
    /// Bearer tokens handed out by `issueToken`, with the key each stands for.
    tokens: Mutex<HashMap<String, String>>,
    turns: AtomicU64,
}

impl From<SimConfig> for AzureSttSim {
    fn from(cfg: SimConfig) -> Self {
        Self { cfg, tokens: Mutex::new(HashMap::new()), turns: AtomicU64::new(0) }
    }
}

impl AzureSttSim {
    /// Turns (request ids with a WAV header) started over all connections.
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }

    /// The key behind the request's subscription-key header or issued bearer token.
    fn authorize(&self, req: &Request) -> Option<String> {
        if let Some(key) = req.header("ocp-apim-subscription-key") {
            return self.cfg.keys.contains(key).then(|| key.to_string());
        }
        let token = req.header_key("authorization", "Bearer ")?;
        self.tokens.lock().ok()?.get(token).cloned().filter(|key| self.cfg.keys.contains(key))
    }

    /// `POST /sts/v1.0/issueToken`: a JWT-shaped token valid for the key, or 401.
    fn issue_token(&self, req: &Request, stats: &Stats) -> Reply {
        let key = req.header("ocp-apim-subscription-key").unwrap_or("");
        if !stats.check_key(key) {
            return denied();
        }
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.{}", usp::new_id(), usp::new_id());
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(token.clone(), key.to_string());
        }
        Reply::with_type(200, "text/plain; charset=us-ascii", token)
    }

    /// Auth, connection id and query checks, answered like the service.
    fn upgrade(&self, req: &Request, stats: &Stats) -> Route<conn::Opts> {
        if let Some(key) = req.header("ocp-apim-subscription-key") {
            stats.saw_key(key);
        }
        if self.authorize(req).is_none() {
            return Route::Reply(denied());
        }
        let bad = |msg: &str| Route::Reply(Reply::with_type(400, "text/plain", msg));
        if !req.header("x-connectionid").is_some_and(usp::is_id) {
            return bad("X-ConnectionId header is missing or invalid.");
        }
        if !req.is_websocket() {
            return Route::Reply(Reply::with_type(426, "text/plain", "Connection header did not include 'upgrade'"));
        }
        let detailed = match req.query_param("format").as_deref() {
            None | Some("simple") => false,
            Some("detailed") => true,
            Some(_) => return bad("Invalid format parameter."),
        };
        let mut segmentation_ms = SEGMENTATION_SILENCE_MS;
        if let Some(v) = req.query_param("segmentationSilenceTimeoutMs") {
            match v.parse::<u32>() {
                Ok(ms) if (100..=5000).contains(&ms) => segmentation_ms = ms,
                _ => return bad("Invalid segmentationSilenceTimeoutMs."),
            }
        }
        Route::Upgrade(conn::Opts { detailed, segmentation_ms })
    }
}

impl Service for AzureSttSim {
    type Session = conn::Opts;
    const NAME: &'static str = "azure-stt";

    fn route(&self, req: &Request, stats: &Stats) -> Route<conn::Opts> {
        let v1_mode =
            req.path.strip_prefix("/speech/recognition/").and_then(|rest| rest.strip_suffix("/cognitiveservices/v1"));
        match (req.method.as_str(), req.path.as_str(), v1_mode) {
            ("POST", "/sts/v1.0/issueToken", _) => Route::Reply(self.issue_token(req, stats)),
            (_, _, Some("conversation" | "interactive" | "dictation")) | (_, "/stt/speech/universal/v2", _) => {
                self.upgrade(req, stats)
            }
            _ => Route::Reply(Reply::with_type(404, "text/plain", "")),
        }
    }

    async fn serve(self: Arc<Self>, mut ws: Ws, opts: conn::Opts, stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        let mut p = conn::Conn::new(self.clone(), opts, stats.clone());
        simkit::run(&mut ws, &mut p, &stop).await;
    }
}

fn denied() -> Reply {
    Reply::json(401, ACCESS_DENIED)
}

#[cfg(test)]
mod tests;
