//! ElevenLabs Scribe realtime simulator (protocols/stt.md B4): `GET /v1/models` for key checks
//! and the `/v1/speech-to-text/realtime` WebSocket, refusing a bad key the way Scribe does (an
//! `auth_error` message, then close) and transcribing through the shared recognizer.

mod conn;

use serde_json::json;
use simkit::{Reply, Request, Route, Service, Stats, Ws};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Audio between `partial_transcript`s while speech is ongoing.
const INTERIM_EVERY_MS: u64 = 400;

simulator!(
    /// The ElevenLabs speech-to-text simulator.
    ElevenLabsSim
);

/// An upgraded socket: the session, or the in-band refusal Scribe sends instead.
pub enum Upgrade {
    Refuse(&'static str, String),
    Ok(String, Session),
}

impl Service for ElevenLabsSim {
    type Session = Upgrade;
    const NAME: &'static str = "elevenlabs-stt";

    fn route(&self, req: &Request, _: &Stats) -> Route<Upgrade> {
        let key = req.header("xi-api-key").map(str::trim).filter(|k| self.cfg.keys.contains(k));
        match req.path.as_str() {
            "/v1/models" if key.is_none() => Route::Reply(invalid_key()),
            "/v1/models" => Route::Reply(Reply::json(
                200,
                json!([{
                    "model_id": "scribe_v2_realtime",
                    "name": "Scribe v2 Realtime",
                    "can_do_text_to_speech": false,
                    "languages": [{"language_id": "en", "name": "English"}],
                }])
                .to_string(),
            )),
            "/v1/speech-to-text/realtime" if req.is_websocket() => {
                Route::Upgrade(match (key, parse_query(&req.query)) {
                    (None, _) => Upgrade::Refuse("auth_error", "Invalid API key".into()),
                    (Some(_), Err(e)) => Upgrade::Refuse("input_error", e),
                    (Some(key), Ok(session)) => Upgrade::Ok(key.to_string(), session),
                })
            }
            _ => Route::Reply(Reply::json(404, json!({"detail": "Not Found"}).to_string())),
        }
    }

    async fn serve(self: Arc<Self>, mut ws: Ws, upgrade: Upgrade, stats: Arc<Stats>, stop: CancellationToken) {
        match upgrade {
            Upgrade::Refuse(kind, error) => conn::refuse(&mut ws, kind, &error).await,
            Upgrade::Ok(key, session) => {
                let _open = stats.accept(&key);
                let mut p = conn::Conn::new(session, &self.cfg, stats.clone());
                simkit::run(&mut ws, &mut p, &stop).await;
            }
        }
    }
}

/// ElevenLabs' 401 for an unknown key.
fn invalid_key() -> Reply {
    Reply::json(401, json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}).to_string())
}

/// What the realtime query asked for; `Err` is an `input_error` text.
#[derive(Debug, Clone)]
pub struct Session {
    pub model_id: String,
    pub sample_rate: u32,
    pub vad: bool,
    pub vad_silence_s: f64,
    pub language_code: Option<String>,
    pub include_timestamps: bool,
}

fn parse_query(query: &str) -> Result<Session, String> {
    let mut s = Session {
        model_id: String::new(),
        sample_rate: 16000,
        vad: false,
        vad_silence_s: 1.5,
        language_code: None,
        include_timestamps: false,
    };
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "model_id" => s.model_id = v.into_owned(),
            "audio_format" => {
                s.sample_rate = v
                    .strip_prefix("pcm_")
                    .and_then(|r| r.parse().ok())
                    .filter(|r| [8000, 16000, 22050, 24000, 44100, 48000].contains(r))
                    .ok_or_else(|| format!("unsupported audio_format {v:?} (the simulator decodes pcm_<rate> only)"))?
            }
            "commit_strategy" => match v.as_ref() {
                "manual" => s.vad = false,
                "vad" => s.vad = true,
                other => return Err(format!("invalid commit_strategy {other:?}")),
            },
            "vad_silence_threshold_secs" => {
                s.vad_silence_s = v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| (0.1..=10.0).contains(x))
                    .ok_or("vad_silence_threshold_secs must be a number of seconds")?
            }
            "language_code" => s.language_code = Some(v.into_owned()),
            "include_timestamps" => s.include_timestamps = v == "true",
            _ => {}
        }
    }
    if !s.model_id.starts_with("scribe") || !s.model_id.ends_with("realtime") {
        return Err(format!("model_id {:?} is not a realtime model", s.model_id));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let s = parse_query(
            "model_id=scribe_v2_realtime&audio_format=pcm_8000&commit_strategy=vad&vad_silence_threshold_secs=0.5",
        )
        .unwrap();
        assert_eq!((s.sample_rate, s.vad, s.vad_silence_s), (8000, true, 0.5));
        assert!(parse_query("model_id=scribe_v2_realtime&audio_format=mp3").is_err());
        assert!(parse_query("model_id=eleven_flash_v2_5").is_err());
    }
}
