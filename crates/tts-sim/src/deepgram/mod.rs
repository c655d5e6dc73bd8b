//! Deepgram TTS simulator (protocols/tts.md C5): `GET /v1/models` for key checks, Aura's
//! `/v1/speak` websocket and Flux TTS's `/v2/speak` on one loopback port.

mod conn;
mod flux;

use crate::Voicing;
use simkit::{Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Behaviour knobs; defaults are close to a fast real provider. The fault is close 1011.
#[derive(Debug, Clone)]
pub struct DeepgramTtsSimConfig {
    pub voicing: Voicing,
    /// Aura: `Flush` messages allowed per rolling minute; more get a `Warning` and are ignored.
    pub flushes_per_minute: usize,
    /// Flux: how long text with no clause or sentence boundary waits for one before it is
    /// voiced anyway. Deepgram says only that Flux places its own boundaries; the figure is
    /// this simulator's assumption.
    pub flux_hold: Duration,
}

impl Default for DeepgramTtsSimConfig {
    fn default() -> Self {
        Self { voicing: Voicing::default(), flushes_per_minute: 20, flux_hold: Duration::from_millis(250) }
    }
}

/// A running Deepgram TTS simulator: `DeepgramTtsSim::start(keys, config)`; stops on drop. Its counters
/// are [`SimServer`]'s (`received` counts characters of text).
pub type DeepgramTtsSim = SimServer<DeepgramTtsSimConfig>;

const RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];
const FLUX_RATES: [u32; 6] = [8000, 16000, 24000, 32000, 44100, 48000];

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
    /// `/v2/speak`.
    pub(crate) flux: bool,
}

/// 400 for a model the socket does not serve.
fn no_such_model(message: &str) -> Route<Handshake> {
    Route::Reply(error_body(400, "INVALID_QUERY_PARAMETER", message))
}

/// `/v1/speak` takes `aura-<voice>-<lang>` or `aura-2-<voice>-<lang>`.
fn aura_model(model: Option<String>) -> Result<String, Route<Handshake>> {
    let model = model.unwrap_or_else(|| "aura-asteria-en".into());
    let voice = model.strip_prefix("aura-2-").or_else(|| model.strip_prefix("aura-"));
    if voice.is_none_or(|v| v.is_empty() || v == "2") {
        return Err(no_such_model("No such model/version combination found."));
    }
    Ok(model)
}

/// `/v2/speak` requires `flux-<voice>-<lang>`.
fn flux_model(model: Option<String>) -> Result<String, Route<Handshake>> {
    let Some(model) = model else { return Err(no_such_model("model is required on /v2/speak.")) };
    if model.starts_with("aura-") {
        return Err(no_such_model("Aura models are served on /v1/speak."));
    }
    match model.strip_prefix("flux-").and_then(|rest| rest.rsplit_once('-')) {
        Some((voice, lang)) if !voice.is_empty() && !lang.is_empty() => Ok(model),
        _ => Err(no_such_model("No such model/version combination found.")),
    }
}

impl Service for DeepgramTtsSimConfig {
    type Session = Handshake;

    const NAME: &'static str = "deepgram-tts";

    fn route(&self, head: &Request, stats: &Stats) -> Route<Handshake> {
        let (ws, flux) = match (head.method.as_str(), head.path.trim_end_matches('/')) {
            ("GET", "/v1/models") => (false, false),
            ("GET", "/v1/speak") => (true, false),
            ("GET", "/v2/speak") => (true, true),
            _ => return Route::Reply(error_body(404, "NOT_FOUND", "Not found.")),
        };
        let key = head.header_key("authorization", "Token ").or_else(|| head.header_key("authorization", "Bearer "));
        if !key.is_some_and(|k| stats.check_key(k)) {
            return Route::Reply(error_body(401, "INVALID_AUTH", "Invalid credentials."));
        }
        if !ws {
            return Route::Reply(Reply::json(200, MODELS));
        }
        let model = head.query_param("model");
        let model = match if flux { flux_model(model) } else { aura_model(model) } {
            Ok(m) => m,
            Err(refusal) => return refusal,
        };
        if head.query_param("encoding").is_some_and(|e| e != "linear16") {
            return Route::Reply(error_body(400, "UNSUPPORTED_AUDIO_FORMAT", "The simulator produces linear16 only."));
        }
        let (rates, listed) = if flux {
            (&FLUX_RATES[..], "8000, 16000, 24000, 32000, 44100 or 48000")
        } else {
            (&RATES[..], "8000, 16000, 24000, 32000 or 48000")
        };
        let sample_rate = match head.query_param("sample_rate").map(|r| r.parse::<u32>()) {
            None => 24000,
            Some(Ok(r)) if rates.contains(&r) => r,
            Some(_) => {
                let message = format!("sample_rate must be {listed} for linear16.");
                return Route::Reply(error_body(400, "UNSUPPORTED_AUDIO_FORMAT", &message));
            }
        };
        if !head.is_websocket() {
            return Route::Reply(error_body(426, "UPGRADE_REQUIRED", "Use a WebSocket client."));
        }
        Route::Upgrade(Handshake { model, sample_rate, flux })
    }

    async fn serve(self: Arc<Self>, ws: Ws, hs: Handshake, stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        if hs.flux {
            flux::run(ws, hs, &self, &stats, stop).await;
        } else {
            conn::run(ws, hs, &self, &stats, stop).await;
        }
    }
}

#[cfg(test)]
mod tests;
