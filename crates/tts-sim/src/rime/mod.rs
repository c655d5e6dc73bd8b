//! Rime `ws3` simulator (protocols/tts.md C4) on a loopback port.

mod conn;

use crate::Voicing;
use simkit::{Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Behaviour knobs; defaults are close to a fast real provider. The fault is an `error`
/// message, then close 1011.
#[derive(Debug, Clone, Default)]
pub struct RimeSimConfig {
    pub voicing: Voicing,
}

/// A running Rime simulator: `RimeSim::start(keys, config)`; stops on drop. Its counters
/// are [`SimServer`]'s (`received` counts characters of text).
pub type RimeSim = SimServer<RimeSimConfig>;

const MODELS: [&str; 4] = ["mist", "mistv2", "mistv3", "coda"];
const RATES: [u32; 7] = [8000, 16000, 22050, 24000, 32000, 44100, 48000];

/// When the server voices buffered text (`segment` query parameter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Segment {
    /// Each text message at once.
    Immediate,
    /// Each completed sentence.
    BySentence,
    /// Only on `flush`/`eos`.
    Never,
}

/// What the upgrade request chose.
pub struct Handshake {
    pub(crate) sample_rate: u32,
    pub(crate) segment: Segment,
}

fn reject(status: u16, message: &str) -> Route<Handshake> {
    Route::Reply(Reply::json(status, serde_json::json!({"message": message}).to_string()))
}

impl Service for RimeSimConfig {
    type Session = Handshake;

    const NAME: &'static str = "rime";

    fn route(&self, head: &Request, stats: &Stats) -> Route<Handshake> {
        if head.method != "GET" || head.path.trim_end_matches('/') != "/ws3" {
            return reject(404, "Not Found");
        }
        let key = head.header_key("authorization", "Bearer ");
        if !key.is_some_and(|k| stats.check_key(k)) {
            return reject(401, "Unauthorized: invalid or missing API key");
        }
        if head.query_param("speaker").is_none_or(|s| s.is_empty()) {
            return reject(400, "speaker is required");
        }
        let model = head.query_param("modelId").unwrap_or_else(|| "mistv2".into());
        if !MODELS.contains(&model.as_str()) {
            return reject(400, "modelId must be one of mist, mistv2, mistv3, coda");
        }
        if head.query_param("audioFormat").as_deref() != Some("pcm") {
            return reject(400, "the simulator produces audioFormat=pcm only");
        }
        let sample_rate = match head.query_param("samplingRate").map(|r| r.parse::<u32>()) {
            None => 22050,
            Some(Ok(r)) if RATES.contains(&r) => r,
            Some(_) => return reject(400, "unsupported samplingRate"),
        };
        let segment = match head.query_param("segment").as_deref() {
            None | Some("bySentence") => Segment::BySentence,
            Some("immediate") => Segment::Immediate,
            Some("never") => Segment::Never,
            Some(_) => return reject(400, "segment must be immediate, bySentence or never"),
        };
        if !head.is_websocket() {
            return reject(426, "Upgrade Required");
        }
        Route::Upgrade(Handshake { sample_rate, segment })
    }

    async fn serve(self: Arc<Self>, ws: Ws, hs: Handshake, stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        conn::run(ws, hs, &self, &stats, stop).await;
    }
}

#[cfg(test)]
mod tests;
