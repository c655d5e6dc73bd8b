//! Azure Speech synthesis simulator (protocols/aws-azure.md Z2.2, §K) on a loopback port: the
//! synthesis WebSocket (both SDK paths), and the voices list used to check keys.

mod conn;

use crate::Voicing;
use simkit::{Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// The body Azure's gateway sends with a 401 for a bad key or wrong region.
const ACCESS_DENIED: &str = r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#;

/// Behaviour knobs; defaults are close to a fast real service. The fault is close 1011.
#[derive(Debug, Clone)]
pub struct AzureTtsSimConfig {
    pub voicing: Voicing,
}

impl Default for AzureTtsSimConfig {
    fn default() -> Self {
        Self { voicing: Voicing { piece_ms: 100, ..Voicing::default() } }
    }
}

/// A running Azure simulator: `AzureTtsSim::start(keys, config.into())`; stops on drop.
/// `received` counts characters of SSML text (markup excluded): what Azure bills.
pub type AzureTtsSim = SimServer<Azure>;

/// The Azure synthesis service: its knobs and what the SSML requests asked for.
pub struct Azure {
    cfg: AzureTtsSimConfig,
    /// The voice of every SSML request, in order.
    voices: Mutex<Vec<String>>,
    requests: AtomicU64,
}

impl From<AzureTtsSimConfig> for Azure {
    fn from(cfg: AzureTtsSimConfig) -> Self {
        Self { cfg, voices: Mutex::new(Vec::new()), requests: AtomicU64::new(0) }
    }
}

impl Azure {
    /// The voice named by every SSML request, in order.
    pub fn voices_requested(&self) -> Vec<String> {
        self.voices.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// SSML requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Service for Azure {
    type Session = ();

    const NAME: &'static str = "azure-tts";

    fn route(&self, req: &Request, stats: &Stats) -> Route<()> {
        let ws = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/cognitiveservices/voices/list") => false,
            (_, "/cognitiveservices/websocket/v1" | "/tts/cognitiveservices/websocket/v1") => true,
            _ => return Route::Reply(Reply::with_type(404, "text/plain", "")),
        };
        if !stats.check_key(req.header("ocp-apim-subscription-key").unwrap_or("")) {
            return Route::Reply(Reply::json(401, ACCESS_DENIED));
        }
        if !ws {
            return Route::Reply(Reply::with_type(200, "application/json; charset=utf-8", voice_list()));
        }
        if !usp::is_id(req.header("x-connectionid").unwrap_or("")) {
            return Route::Reply(Reply::with_type(400, "text/plain", "X-ConnectionId header is missing or invalid."));
        }
        if !req.is_websocket() {
            return Route::Reply(Reply::with_type(400, "text/plain", "Connection header did not include 'upgrade'"));
        }
        Route::Upgrade(())
    }

    async fn serve(self: Arc<Self>, ws: Ws, (): (), stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        conn::run(ws, &self, &stats, stop).await;
    }
}

/// `GET /cognitiveservices/voices/list`: a few entries in the service's shape.
fn voice_list() -> String {
    let voice = |short: &str, display: &str, gender: &str, locale: &str, locale_name: &str| {
        serde_json::json!({
            "Name": format!("Microsoft Server Speech Text to Speech Voice ({locale}, {})", short.rsplit('-').next().unwrap_or(short)),
            "DisplayName": display, "LocalName": display, "ShortName": short, "Gender": gender,
            "Locale": locale, "LocaleName": locale_name, "SampleRateHertz": "48000",
            "VoiceType": "Neural", "Status": "GA", "WordsPerMinute": "150",
        })
    };
    let list = serde_json::json!([
        voice("en-US-AvaMultilingualNeural", "Ava Multilingual", "Female", "en-US", "English (United States)"),
        voice("en-US-AndrewMultilingualNeural", "Andrew Multilingual", "Male", "en-US", "English (United States)"),
        voice("en-GB-SoniaNeural", "Sonia", "Female", "en-GB", "English (United Kingdom)"),
        voice("de-DE-KatjaNeural", "Katja", "Female", "de-DE", "German (Germany)"),
    ]);
    list.to_string()
}

#[cfg(test)]
mod tests;
