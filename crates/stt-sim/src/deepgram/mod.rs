//! Deepgram live v1 simulator (protocols/stt.md B1): real auth check at the upgrade, VAD-driven
//! interim/final results labelled from a [`crate::Catalog`]. `/v2/listen` serves Flux
//! (turn-based `TurnInfo`) behind the same key check, see [`flux`].

mod conn;
mod flux;
mod json;

use crate::recognizer::RecOpts;
use simkit::{Reply, Request, Route, Service, Stats, Ws};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Audio between interim results while speech is ongoing.
const INTERIM_EVERY_MS: u64 = 400;
/// No audio and no KeepAlive for this long closes 1011 `NET-0001`.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Deepgram's answer to a text frame it cannot read, on both APIs: close 1008 `DATA-0000`.
fn undecodable(api: &str) -> simkit::Flow {
    tracing::debug!(api, "deepgram sim: undecodable text frame");
    simkit::Flow::close(1008, "DATA-0000")
}

/// No audio for [`IDLE_TIMEOUT`], on both APIs: what is queued is dropped, close 1011 `NET-0001`.
fn idle_close(out: &mut simkit::Outbox) -> simkit::Flow {
    out.clear();
    simkit::Flow::close(1011, "NET-0001")
}

simulator!(
    /// The Deepgram simulator (`/v1/listen`, `/v2/listen`).
    DeepgramSim
);

/// Which API an accepted upgrade speaks, and the key it proved.
pub enum Session {
    V1 { opts: RecOpts, model: String, key: String },
    Flux { opts: flux::FluxOpts, key: String },
}

impl Service for DeepgramSim {
    type Session = Session;
    const NAME: &'static str = "deepgram";

    fn route(&self, req: &Request, _: &Stats) -> Route<Session> {
        match self.check(req) {
            Ok(s) => Route::Upgrade(s),
            Err((status, body)) => Route::Reply(Reply::json(status, body)),
        }
    }

    async fn serve(self: Arc<Self>, mut ws: Ws, session: Session, stats: Arc<Stats>, stop: CancellationToken) {
        let idle = self.cfg.idle_or(Some(IDLE_TIMEOUT));
        match session {
            Session::V1 { opts, model, key } => {
                let _open = stats.accept(&key);
                let mut p = conn::V1::new(opts, model, &self.cfg, idle, stats.clone());
                simkit::run(&mut ws, &mut p, &stop).await;
            }
            Session::Flux { opts, key } => {
                let _open = stats.accept(&key);
                let mut p = flux::Flux::new(opts, &self.cfg, idle, stats.clone());
                simkit::run(&mut ws, &mut p, &stop).await;
            }
        }
    }
}

impl DeepgramSim {
    /// Path, key and query checks, answered like the provider: HTTP status and body.
    fn check(&self, req: &Request) -> Result<Session, (u16, String)> {
        let bad = |msg: &str| (400, json::http_error("Bad Request", msg));
        let path = req.path.as_str();
        if path != "/v1/listen" && path != "/v2/listen" {
            return Err((404, json::http_error("NOT_FOUND", "Not found.")));
        }
        let key = req
            .header_key("authorization", "Token ")
            .filter(|k| self.cfg.keys.contains(k))
            .ok_or_else(|| (401, json::http_error("INVALID_AUTH", "Invalid credentials.")))?
            .to_string();
        if path == "/v2/listen" {
            return Ok(Session::Flux { opts: flux::query(req)?, key });
        }

        let mut encoding = None;
        let mut sample_rate = None;
        let mut model = "nova-3".to_string();
        let mut opts = RecOpts {
            sample_rate: 0,
            interim_every_frames: 0,
            vad_events: false,
            speech_final: true,
            hangover_frames: 15,
            utterance_end_ms: None,
            punctuate: false,
        };
        for (k, v) in req.query_pairs() {
            match k.as_str() {
                "encoding" => encoding = Some(v),
                "sample_rate" => sample_rate = Some(json::sample_rate(&v).ok_or_else(|| bad(json::BAD_RATE))?),
                "channels" if v != "1" => return Err(bad("the simulator supports channels=1 only")),
                "model" => model = v,
                "interim_results" => opts.interim_every_frames = u64::from(v == "true"),
                "vad_events" => opts.vad_events = v == "true",
                "punctuate" | "smart_format" => opts.punctuate |= v == "true",
                "endpointing" => match v.as_str() {
                    "false" => opts.speech_final = false,
                    ms => {
                        let ms: u32 = ms.parse().map_err(|_| bad("endpointing must be milliseconds or false"))?;
                        opts.hangover_frames = (ms / 20).max(1);
                    }
                },
                "utterance_end_ms" => {
                    opts.utterance_end_ms = Some(v.parse().map_err(|_| bad("utterance_end_ms must be milliseconds"))?)
                }
                _ => {}
            }
        }
        opts.sample_rate = json::linear16(encoding.as_deref(), sample_rate).map_err(bad)?;
        if opts.interim_every_frames > 0 {
            opts.interim_every_frames = (INTERIM_EVERY_MS / 20).max(1);
        }
        Ok(Session::V1 { opts, model, key })
    }
}

#[cfg(test)]
mod tests;
