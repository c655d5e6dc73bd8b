//! One simulated Transcribe stream: event-stream `AudioEvent`s in, `TranscriptEvent`s out
//! (partials re-sent under one `ResultId`, then its final), exceptions as terminal frames.

use super::{Session, ENDPOINT_SILENCE_MS, INTERIM_EVERY_MS};
use crate::audio::{ms, Listener};
use crate::recognizer::{bare, Hyp, Out, RecOpts};
use crate::SimConfig;
use aws::eventstream::Message as EsMessage;
use bytes::Bytes;
use serde_json::{json, Value};
use simkit::{Flow, Message, Outbox, Protocol, Stats, Ws};
use std::sync::Arc;
use std::time::Duration;

/// A terminal exception frame (`:message-type: exception`), then the close AWS sends after it.
pub(super) async fn refuse(ws: &mut Ws, kind: &'static str, message: &str) {
    let mut out = Outbox::default();
    if let Flow::Close(code, reason) = exception(&mut out, kind, message) {
        if out.send_all(ws).await.is_ok() {
            simkit::close(ws, code, &reason).await;
        }
    }
}

/// Queue an exception frame and close 1000 after it.
fn exception(out: &mut Outbox, kind: &'static str, message: &str) -> Flow {
    let body = json!({ "Message": message }).to_string();
    match EsMessage::exception(kind, body.into_bytes()).encode() {
        Ok(frame) => {
            out.now(Bytes::from(frame));
            Flow::close(1000, "")
        }
        Err(_) => Flow::End,
    }
}

fn transcript_event(results: Value) -> Option<Bytes> {
    let body = json!({ "Transcript": { "Results": results } }).to_string();
    EsMessage::event("TranscriptEvent", "application/json", body.into_bytes()).encode().ok().map(Bytes::from)
}

pub(super) struct Conn {
    listen: Listener,
    render: Render,
    idle: Option<Duration>,
}

impl Conn {
    pub(super) fn new(s: Session, cfg: &SimConfig, idle: Option<Duration>, stats: Arc<Stats>) -> Self {
        let opts = RecOpts {
            sample_rate: s.sample_rate,
            interim_every_frames: (INTERIM_EVERY_MS / 20).max(1),
            vad_events: false,
            speech_final: true,
            hangover_frames: (ENDPOINT_SILENCE_MS / 20).max(1),
            utterance_end_ms: None,
            punctuate: true,
        };
        Self {
            listen: Listener::new(opts, cfg, stats),
            render: Render { language: s.language_code, result_id: None },
            idle,
        }
    }
}

impl Protocol for Conn {
    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        // The service ignores text frames (pipecat sends a JSON "end" one).
        let Message::Binary(frame) = msg else { return Flow::Continue };
        let audio = match EsMessage::decode(&frame) {
            Ok(m) if m.message_type() == Some("event") && m.event_type() == Some("AudioEvent") => m.payload,
            Ok(_) => {
                out.clear();
                return exception(out, "BadRequestException", "Expected an AudioEvent.");
            }
            Err(e) => {
                out.clear();
                return exception(out, "BadRequestException", &format!("Could not decode the audio stream: {e}"));
            }
        };
        if audio.is_empty() {
            // End of audio: flush the segment in progress, send everything, close 1000.
            self.listen.flush();
            self.render.schedule(&mut self.listen, out, true);
            return Flow::close(1000, "");
        }
        let failed = self.listen.audio(&audio);
        self.render.schedule(&mut self.listen, out, false);
        if failed {
            return exception(out, "InternalFailureException", "An internal error occurred.");
        }
        Flow::Active
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }

    fn on_idle(&mut self, out: &mut Outbox) -> Flow {
        let secs = self.idle.unwrap_or_default().as_secs();
        let msg = format!("Your request timed out because no new audio was received for {secs} seconds.");
        exception(out, "BadRequestException", &msg)
    }
}

struct Render {
    language: String,
    /// The segment being transcribed: partials and its final share this id.
    result_id: Option<String>,
}

impl Render {
    fn schedule(&mut self, listen: &mut Listener, outbox: &mut Outbox, flush: bool) {
        for (due, o) in listen.results(flush) {
            let (hyp, partial) = match o {
                Out::Interim(hyp) => (hyp, true),
                Out::Final { hyp, .. } => (hyp, false),
                Out::SpeechStarted { .. } | Out::UtteranceEnd { .. } => continue,
            };
            let id = self.result_id.get_or_insert_with(|| uuid::Uuid::new_v4().to_string()).clone();
            if !partial {
                self.result_id = None;
            }
            if let Some(frame) = transcript_event(json!([self.result(&id, &hyp, partial)])) {
                outbox.push(due, frame);
            }
        }
    }

    /// One `Result` (TS-MODEL shape): items per word plus punctuation items; finals carry
    /// per-item `Confidence`, partials do not.
    fn result(&self, id: &str, hyp: &Hyp, partial: bool) -> Value {
        let mut items = Vec::with_capacity(hyp.words.len() + 2);
        for w in &hyp.words {
            let mut item = json!({
                "Content": w.punctuated.trim_end_matches(|c: char| c.is_ascii_punctuation() && c != '\''),
                "StartTime": ms(w.start_s), "EndTime": ms(w.end_s),
                "Type": "pronunciation", "VocabularyFilterMatch": false,
            });
            if !partial {
                item["Confidence"] = json!(0.98);
            }
            if !bare(&w.punctuated).is_empty() {
                items.push(item);
            }
            if let Some(p) = w.punctuated.chars().last().filter(|c| c.is_ascii_punctuation() && *c != '\'') {
                items.push(json!({
                    "Content": p.to_string(), "StartTime": ms(w.end_s), "EndTime": ms(w.end_s),
                    "Type": "punctuation", "VocabularyFilterMatch": false,
                }));
            }
        }
        json!({
            "ResultId": id,
            "StartTime": ms(hyp.start_s),
            "EndTime": ms(hyp.end_s),
            "IsPartial": partial,
            "ChannelId": "ch_0",
            "LanguageCode": self.language,
            "Alternatives": [{ "Transcript": hyp.transcript, "Items": items }],
        })
    }
}
