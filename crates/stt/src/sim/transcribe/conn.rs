//! One simulated Transcribe stream: event-stream `AudioEvent`s in, `TranscriptEvent`s out
//! (partials re-sent under one `ResultId`, then its final), exceptions as terminal frames.

use super::{Session, Shared};
use crate::sim::recognizer::{bare, Hyp, Out, RecOpts, Recognizer};
use crate::sim::wsconn::{self, Pcm};
use aws::eventstream::Message as EsMessage;
use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// A terminal exception frame (`:message-type: exception`), then the close AWS sends after it.
pub(super) async fn refuse(mut ws: WebSocket, kind: &'static str, message: &str) {
    if let Ok(frame) = exception(kind, message) {
        if ws.send(Message::Binary(frame)).await.is_ok() {
            wsconn::close(&mut ws, 1000, "").await;
        }
    }
}

fn exception(kind: &'static str, message: &str) -> Result<Bytes, aws::eventstream::FrameError> {
    let body = json!({ "Message": message }).to_string();
    EsMessage::exception(kind, body.into_bytes()).encode().map(Bytes::from)
}

fn transcript_event(results: Value) -> Option<Bytes> {
    let body = json!({ "Transcript": { "Results": results } }).to_string();
    EsMessage::event("TranscriptEvent", "application/json", body.into_bytes()).encode().ok().map(Bytes::from)
}

/// Frames waiting for their due time; due times never decrease, so order is kept.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<(Instant, Bytes)>,
    last_due: Option<Instant>,
}

impl Outbox {
    fn push(&mut self, due: Instant, frame: Bytes) {
        let due = self.last_due.map_or(due, |last| last.max(due));
        self.last_due = Some(due);
        self.queue.push_back((due, frame));
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    async fn send_due(&mut self, ws: &mut WebSocket, all: bool) -> Result<(), axum::Error> {
        let now = Instant::now();
        while self.next_due().is_some_and(|d| all || d <= now) {
            if let Some((_, frame)) = self.queue.pop_front() {
                ws.send(Message::Binary(frame)).await?;
            }
        }
        Ok(())
    }
}

pub(super) async fn run(mut ws: WebSocket, s: Session, shared: &Shared) {
    let cfg = &shared.cfg;
    let opts = RecOpts {
        sample_rate: s.sample_rate,
        interim_every_frames: (cfg.interim_every_ms / 20).max(1),
        vad_events: false,
        speech_final: true,
        hangover_frames: (cfg.endpoint_silence_ms / 20).max(1),
        utterance_end_ms: None,
        punctuate: true,
    };
    let bytes_per_s = u64::from(s.sample_rate) * 2;
    let mut rec = Recognizer::new(opts, cfg.catalog.clone());
    let mut render = Render { language: s.language_code, result_id: None };
    let mut out = Vec::new();
    let mut outbox = Outbox::default();
    let mut pcm = Pcm::default();
    let mut audio_bytes = 0u64;
    let due = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(due);
    let idle = tokio::time::sleep(cfg.idle_timeout);
    tokio::pin!(idle);

    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            msg = ws.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Binary(frame))) => {
                    let audio = match EsMessage::decode(&frame) {
                        Ok(m) if m.message_type() == Some("event") && m.event_type() == Some("AudioEvent") => m.payload,
                        Ok(_) => return refuse(ws, "BadRequestException", "Expected an AudioEvent.").await,
                        Err(e) => return refuse(ws, "BadRequestException", &format!("Could not decode the audio stream: {e}")).await,
                    };
                    if audio.is_empty() {
                        // End of audio: flush the segment in progress, send everything, close 1000.
                        rec.flush(&mut out);
                        render.schedule(&mut out, &mut outbox, Duration::ZERO);
                        if outbox.send_due(&mut ws, true).await.is_ok() {
                            wsconn::close(&mut ws, 1000, "").await;
                        }
                        return;
                    }
                    idle.as_mut().reset(Instant::now() + cfg.idle_timeout);
                    audio_bytes += audio.len() as u64;
                    shared.stats.audio_bytes.fetch_add(audio.len() as u64, Ordering::Relaxed);
                    rec.push(pcm.decode(&audio), &mut out);
                    render.schedule(&mut out, &mut outbox, cfg.final_delay);
                    if let Some(limit) = cfg.fail_after_audio_ms {
                        if audio_bytes * 1000 / bytes_per_s.max(1) >= limit {
                            let _ = outbox.send_due(&mut ws, true).await;
                            return refuse(ws, "InternalFailureException", "An internal error occurred.").await;
                        }
                    }
                }
                // The service ignores text frames (pipecat sends a JSON "end" one).
                Some(Ok(_)) => {}
            },
            () = &mut due, if outbox.next_due().is_some() => {
                if outbox.send_due(&mut ws, false).await.is_err() {
                    return;
                }
            },
            () = &mut idle => {
                let _ = outbox.send_due(&mut ws, true).await;
                let secs = cfg.idle_timeout.as_secs();
                let msg = format!("Your request timed out because no new audio was received for {secs} seconds.");
                return refuse(ws, "BadRequestException", &msg).await;
            },
        }
        let next = outbox.next_due().unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        if due.deadline() != next {
            due.as_mut().reset(next);
        }
    }
}

struct Render {
    language: String,
    /// The segment being transcribed: partials and its final share this id.
    result_id: Option<String>,
}

impl Render {
    fn schedule(&mut self, out: &mut Vec<Out>, outbox: &mut Outbox, final_delay: Duration) {
        let now = Instant::now();
        for o in out.drain(..) {
            let (hyp, partial, due) = match o {
                Out::Interim(hyp) => (hyp, true, now),
                Out::Final { hyp, delay, .. } => (hyp, false, if delay { now + final_delay } else { now }),
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
                "StartTime": wsconn::ms(w.start_s), "EndTime": wsconn::ms(w.end_s),
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
                    "Content": p.to_string(), "StartTime": wsconn::ms(w.end_s), "EndTime": wsconn::ms(w.end_s),
                    "Type": "punctuation", "VocabularyFilterMatch": false,
                }));
            }
        }
        json!({
            "ResultId": id,
            "StartTime": wsconn::ms(hyp.start_s),
            "EndTime": wsconn::ms(hyp.end_s),
            "IsPartial": partial,
            "ChannelId": "ch_0",
            "LanguageCode": self.language,
            "Alternatives": [{ "Transcript": hyp.transcript, "Items": items }],
        })
    }
}
