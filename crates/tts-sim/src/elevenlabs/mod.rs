//! ElevenLabs simulator on a loopback port: `stream-input` (protocols/tts.md C1) and the
//! multi-context `multi-stream-input` (C2).

mod buffer;
mod conn;
mod format;
mod multi;

use crate::Voicing;
use format::Format;
use simkit::{Reply, Request, Route, Service, SimServer, Stats, Ws};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Behaviour knobs; defaults are close to a fast real provider. The fault is close 1011.
#[derive(Debug, Clone)]
pub struct ElevenLabsSimConfig {
    pub voicing: Voicing,
    /// Close after this long without a client message (query `inactivity_timeout` overrides).
    pub inactivity_timeout: Duration,
}

impl Default for ElevenLabsSimConfig {
    fn default() -> Self {
        Self { voicing: Voicing::default(), inactivity_timeout: Duration::from_secs(20) }
    }
}

/// A running ElevenLabs simulator: `ElevenLabsSim::start(keys, config.into())`; stops on
/// drop. `received` counts characters of text after the first message (whitespace-only
/// messages excluded); [`ElevenLabs::contexts_closed`] and [`ElevenLabs::sockets_closed`] the
/// multi-context closes.
pub type ElevenLabsSim = SimServer<ElevenLabs>;

/// The ElevenLabs service: its knobs and what multi-context sockets were asked.
pub struct ElevenLabs {
    cfg: ElevenLabsSimConfig,
    contexts_closed: AtomicU64,
    sockets_closed: AtomicU64,
}

impl From<ElevenLabsSimConfig> for ElevenLabs {
    fn from(cfg: ElevenLabsSimConfig) -> Self {
        Self { cfg, contexts_closed: AtomicU64::new(0), sockets_closed: AtomicU64::new(0) }
    }
}

impl ElevenLabs {
    /// Multi-context `close_context` messages received (barge-ins and turn ends).
    pub fn contexts_closed(&self) -> u64 {
        self.contexts_closed.load(Ordering::Relaxed)
    }

    /// Multi-context `close_socket` messages received (a client closing its idle socket).
    pub fn sockets_closed(&self) -> u64 {
        self.sockets_closed.load(Ordering::Relaxed)
    }
}

impl Service for ElevenLabs {
    type Session = Handshake;

    const NAME: &'static str = "elevenlabs";

    fn route(&self, req: &Request, stats: &Stats) -> Route<Handshake> {
        match check_upgrade(req, &self.cfg, stats) {
            Ok(hs) => Route::Upgrade(hs),
            Err((status, body)) => Route::Reply(Reply::json(status, body)),
        }
    }

    async fn serve(self: Arc<Self>, ws: Ws, hs: Handshake, stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        if hs.multi {
            multi::run(ws, hs, &self, &stats, stop).await;
        } else {
            conn::run(ws, hs, &self, &stats, stop).await;
        }
    }
}

/// What the HTTP upgrade request told us.
pub struct Handshake {
    pub(crate) voice: String,
    pub(crate) format: Format,
    pub(crate) auto_mode: bool,
    pub(crate) inactivity: Duration,
    /// The `xi-api-key` header was present and valid; otherwise the first message must carry one.
    pub(crate) authed: bool,
    /// `multi-stream-input`: messages carry `context_id`.
    pub(crate) multi: bool,
}

/// Path, query and header checks, answered like the provider: JSON `detail` bodies.
/// Errors are the HTTP status and JSON body to answer with.
fn check_upgrade(req: &Request, cfg: &ElevenLabsSimConfig, stats: &Stats) -> Result<Handshake, (u16, String)> {
    let segments: Vec<&str> = req.path.split('/').collect();
    let (voice, multi) = match segments.as_slice() {
        ["", "v1", "text-to-speech", voice, "stream-input"] if !voice.is_empty() => ((*voice).to_string(), false),
        ["", "v1", "text-to-speech", voice, "multi-stream-input"] if !voice.is_empty() => ((*voice).to_string(), true),
        _ => return Err((404, r#"{"detail":"Not Found"}"#.into())),
    };
    let authed = match req.header("xi-api-key") {
        None => false,
        Some(key) => {
            if !stats.check_key(key) {
                return Err((401, r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#.into()));
            }
            true
        }
    };
    let mut format = Format::Pcm(44100);
    let mut saw_format = false;
    let mut auto_mode = false;
    let mut inactivity = cfg.inactivity_timeout;
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "output_format" => {
                saw_format = true;
                format = Format::parse(&v).ok_or_else(|| {
                    let msg = format!(
                        r#"{{"detail":{{"status":"invalid_output_format","message":"the simulator produces {} only"}}}}"#,
                        Format::SUPPORTED
                    );
                    (422, msg)
                })?;
            }
            "auto_mode" => auto_mode = v == "true",
            "inactivity_timeout" => match v.parse::<u64>() {
                Ok(s) if (1..=180).contains(&s) => inactivity = Duration::from_secs(s),
                _ => {
                    return Err((
                        422,
                        r#"{"detail":{"status":"invalid_inactivity_timeout","message":"inactivity_timeout must be 1-180 seconds"}}"#.into(),
                    ))
                }
            },
            _ => {}
        }
    }
    if !saw_format {
        // The provider defaults to mp3_44100_128, which the simulator cannot produce.
        return Err((
            422,
            r#"{"detail":{"status":"invalid_output_format","message":"set output_format; the simulator does not produce mp3"}}"#.into(),
        ));
    }
    Ok(Handshake { voice, format, auto_mode, inactivity, authed, multi })
}

#[cfg(test)]
mod tests;
