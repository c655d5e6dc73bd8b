//! One simulated Cartesia stream: binary PCM in, `transcript` deltas out, `finalize` →
//! `flush_done`, `close` → `done` and a normal close.

use super::{error_body, Session, INTERIM_EVERY_MS};
use crate::audio::{ms, Listener};
use crate::recognizer::{Hyp, Out, RecOpts};
use crate::SimConfig;
use serde_json::json;
use simkit::{Flow, Message, Outbox, Protocol, Stats};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub(super) struct Conn {
    request_id: String,
    language: String,
    listen: Listener,
    idle: Option<Duration>,
}

impl Conn {
    pub(super) fn new(s: Session, cfg: &SimConfig, stats: Arc<Stats>) -> Self {
        let whisper = s.model.starts_with("ink-whisper");
        let opts = RecOpts {
            sample_rate: s.sample_rate,
            interim_every_frames: if whisper { 0 } else { (INTERIM_EVERY_MS / 20).max(1) },
            vad_events: false,
            speech_final: true,
            hangover_frames: (s.max_silence_s * 50.0).round() as u32,
            utterance_end_ms: None,
            punctuate: true,
        };
        Self {
            request_id: uuid::Uuid::new_v4().to_string(),
            language: s.language,
            listen: Listener::new(opts, cfg, stats),
            idle: cfg.idle_timeout,
        }
    }

    fn schedule(&mut self, outbox: &mut Outbox) {
        let r = Render { request_id: &self.request_id, language: &self.language };
        for (due, o) in self.listen.results(false) {
            let msg = match o {
                Out::Interim(hyp) => r.transcript(&hyp, false),
                Out::Final { hyp, .. } => r.transcript(&hyp, true),
                Out::SpeechStarted { .. } | Out::UtteranceEnd { .. } => continue,
            };
            outbox.push(due, msg);
        }
    }

    fn error(&self, out: &mut Outbox, status: u16, title: &str, message: &str, code: &str, close: u16) -> Flow {
        out.now(error_body(status, title, message, code).to_string());
        Flow::close(close, if close == 1011 { "internal error" } else { "" })
    }
}

impl Protocol for Conn {
    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        match msg {
            Message::Binary(bytes) => {
                let failed = self.listen.audio(&bytes);
                self.schedule(out);
                if failed {
                    out.clear();
                    return self.error(
                        out,
                        500,
                        "Internal Server Error",
                        "transcription failed",
                        "internal_error",
                        1011,
                    );
                }
                Flow::Active
            }
            Message::Text(cmd) => match cmd.as_str().trim() {
                "finalize" => {
                    out.release_all(Instant::now());
                    self.listen.finalize();
                    self.schedule(out);
                    out.now(json!({"type": "flush_done", "request_id": self.request_id}).to_string());
                    Flow::Active
                }
                // `done` is the command's name in older Cartesia docs.
                "close" | "done" => {
                    self.listen.finalize();
                    self.schedule(out);
                    out.now(json!({"type": "done", "request_id": self.request_id}).to_string());
                    Flow::close(1000, "")
                }
                _ => {
                    out.clear();
                    self.error(out, 400, "Invalid command", "expected finalize or close", "invalid_request", 1008)
                }
            },
            _ => Flow::Continue,
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }
}

struct Render<'a> {
    request_id: &'a str,
    language: &'a str,
}

impl Render<'_> {
    /// A delta: the text carries its own leading space; `duration` covers the audio since the
    /// previous final.
    fn transcript(&self, hyp: &Hyp, is_final: bool) -> String {
        let text = if hyp.transcript.is_empty() { String::new() } else { format!(" {}", hyp.transcript) };
        let words: Vec<_> = hyp
            .words
            .iter()
            .map(|w| json!({"word": w.punctuated, "start": ms(w.start_s), "end": ms(w.end_s)}))
            .collect();
        json!({
            "type": "transcript",
            "request_id": self.request_id,
            "text": text,
            "is_final": is_final,
            "duration": ms(hyp.end_s - hyp.start_s),
            "language": self.language,
            "words": words,
        })
        .to_string()
    }
}
