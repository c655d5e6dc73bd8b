//! One simulated Scribe realtime session: base64 audio chunks in, `partial_transcript` /
//! `committed_transcript` out, commits from the VAD or from the client.

use super::{Session, INTERIM_EVERY_MS};
use crate::audio::{ms, Listener};
use crate::recognizer::{Hyp, Out, RecOpts};
use crate::SimConfig;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use simkit::{Flow, Message, Outbox, Protocol, Stats, Ws};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Deserialize)]
struct Chunk {
    message_type: String,
    #[serde(default)]
    audio_base_64: String,
    #[serde(default)]
    commit: bool,
}

/// Refuse a session the way Scribe does: an error message, then a policy close.
pub(super) async fn refuse(ws: &mut Ws, kind: &str, error: &str) {
    let mut out = Outbox::default();
    if let Flow::Close(code, reason) = fail(&mut out, kind, error, 1008) {
        if out.send_all(ws).await.is_ok() {
            simkit::close(ws, code, &reason).await;
        }
    }
}

/// An error message, then close with `code`.
fn fail(out: &mut Outbox, kind: &str, error: &str, code: u16) -> Flow {
    out.now(json!({"message_type": kind, "error": error}).to_string());
    Flow::close(code, "")
}

/// One authorized session.
pub(super) struct Conn {
    session: Session,
    listen: Listener,
    render: Render,
    /// Decoded audio of the current chunk (reused).
    raw: Vec<u8>,
    idle: Option<Duration>,
}

impl Conn {
    pub(super) fn new(s: Session, cfg: &SimConfig, stats: Arc<Stats>) -> Self {
        let opts = RecOpts {
            sample_rate: s.sample_rate,
            interim_every_frames: (INTERIM_EVERY_MS / 20).max(1),
            vad_events: false,
            speech_final: true,
            hangover_frames: if s.vad { (s.vad_silence_s * 50.0).round() as u32 } else { 15 },
            utterance_end_ms: None,
            punctuate: true,
        };
        let render = Render { vad: s.vad, timestamps: s.include_timestamps, uncommitted: String::new() };
        Self {
            listen: Listener::new(opts, cfg, stats),
            session: s,
            render,
            raw: Vec::with_capacity(4096),
            idle: cfg.idle_timeout,
        }
    }
}

impl Protocol for Conn {
    fn on_open(&mut self, out: &mut Outbox) {
        let s = &self.session;
        let started = json!({
            "message_type": "session_started",
            "session_id": uuid::Uuid::new_v4().simple().to_string(),
            "config": {
                "sample_rate": s.sample_rate,
                "audio_format": format!("pcm_{}", s.sample_rate),
                "language_code": s.language_code,
                "commit_strategy": if s.vad { "vad" } else { "manual" },
                "vad_silence_threshold_secs": s.vad_silence_s,
                "model_id": s.model_id,
                "include_timestamps": s.include_timestamps,
            },
        });
        out.now(started.to_string());
    }

    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        let text = match msg {
            Message::Text(text) => text,
            Message::Binary(_) => {
                out.clear();
                return fail(out, "input_error", "audio must be sent as input_audio_chunk JSON", 1008);
            }
            _ => return Flow::Continue,
        };
        let chunk = match serde_json::from_str::<Chunk>(&text) {
            Ok(c) if c.message_type == "input_audio_chunk" => c,
            _ => {
                out.clear();
                return fail(out, "input_error", "expected an input_audio_chunk message", 1008);
            }
        };
        self.raw.clear();
        if base64::engine::general_purpose::STANDARD.decode_vec(chunk.audio_base_64.as_bytes(), &mut self.raw).is_err()
        {
            out.clear();
            return fail(out, "input_error", "audio_base_64 is not valid base64", 1008);
        }
        let failed = self.listen.audio(&self.raw);
        if chunk.commit {
            out.release_all(Instant::now());
            self.listen.finalize();
        }
        self.render.schedule(&mut self.listen, out);
        if failed {
            return fail(out, "transcriber_error", "Transcriber failed unexpectedly", 1011);
        }
        Flow::Active
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }
}

struct Render {
    vad: bool,
    timestamps: bool,
    /// Manual mode: text of utterances the VAD ended but the client has not committed yet.
    uncommitted: String,
}

impl Render {
    fn schedule(&mut self, listen: &mut Listener, outbox: &mut Outbox) {
        for (due, o) in listen.results(false) {
            match o {
                Out::Interim(hyp) => outbox.push(due, partial(&self.joined(&hyp.transcript))),
                Out::Final { hyp, delay: true, .. } if !self.vad => {
                    // Manual commit strategy: the VAD does not commit; the text waits.
                    self.uncommitted = self.joined(&hyp.transcript);
                    outbox.push(Instant::now(), partial(&self.uncommitted));
                }
                Out::Final { hyp, .. } => {
                    let text = self.joined(&hyp.transcript);
                    self.uncommitted.clear();
                    outbox.push(due, json!({"message_type": "committed_transcript", "text": text}).to_string());
                    if self.timestamps {
                        outbox.push(due, with_timestamps(&text, &hyp));
                    }
                }
                Out::SpeechStarted { .. } | Out::UtteranceEnd { .. } => {}
            }
        }
    }

    fn joined(&self, text: &str) -> String {
        match (self.uncommitted.is_empty(), text.is_empty()) {
            (true, _) => text.to_string(),
            (false, true) => self.uncommitted.clone(),
            (false, false) => format!("{} {text}", self.uncommitted),
        }
    }
}

fn partial(text: &str) -> String {
    json!({"message_type": "partial_transcript", "text": text}).to_string()
}

fn with_timestamps(text: &str, hyp: &Hyp) -> String {
    let words: Vec<_> = hyp
        .words
        .iter()
        .map(|w| {
            json!({"text": w.punctuated, "start": ms(w.start_s), "end": ms(w.end_s),
                   "type": "word", "logprob": -0.05})
        })
        .collect();
    json!({"message_type": "committed_transcript_with_timestamps", "text": text, "language_code": "en", "words": words})
        .to_string()
}
