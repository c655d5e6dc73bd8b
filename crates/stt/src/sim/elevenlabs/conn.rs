//! One simulated Scribe realtime session: base64 audio chunks in, `partial_transcript` /
//! `committed_transcript` out, commits from the VAD or from the client.

use super::{Session, Shared};
use crate::sim::recognizer::{Hyp, Out, RecOpts, Recognizer};
use crate::sim::wsconn::{self, Outbox, Pcm};
use axum::extract::ws::{Message, WebSocket};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;
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
pub(super) async fn refuse(ws: WebSocket, kind: &str, error: &str) {
    fail(ws, kind, error, 1008).await;
}

/// An error message, then close with `code`.
async fn fail(mut ws: WebSocket, kind: &str, error: &str, code: u16) {
    let msg = json!({"message_type": kind, "error": error}).to_string();
    if ws.send(Message::text(msg)).await.is_ok() {
        wsconn::close(&mut ws, code, "").await;
    }
}

pub(super) async fn run(mut ws: WebSocket, s: Session, shared: &Shared) {
    let cfg = &shared.cfg;
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let started = json!({
        "message_type": "session_started",
        "session_id": session_id,
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
    if ws.send(Message::text(started.to_string())).await.is_err() {
        return;
    }
    let opts = RecOpts {
        sample_rate: s.sample_rate,
        interim_every_frames: (cfg.interim_every_ms / 20).max(1),
        vad_events: false,
        speech_final: true,
        hangover_frames: if s.vad { (s.vad_silence_s * 50.0).round() as u32 } else { 15 },
        utterance_end_ms: None,
        punctuate: true,
    };
    let bytes_per_s = u64::from(s.sample_rate) * 2;
    let mut rec = Recognizer::new(opts, cfg.catalog.clone());
    let mut st = Render { vad: s.vad, timestamps: s.include_timestamps, uncommitted: String::new() };
    let mut out = Vec::new();
    let mut outbox = Outbox::default();
    let mut pcm = Pcm::default();
    let mut raw: Vec<u8> = Vec::with_capacity(4096);
    let mut audio_bytes = 0u64;
    let due = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(due);

    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            msg = ws.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) => {
                    let chunk = match serde_json::from_str::<Chunk>(&text) {
                        Ok(c) if c.message_type == "input_audio_chunk" => c,
                        _ => return refuse(ws, "input_error", "expected an input_audio_chunk message").await,
                    };
                    raw.clear();
                    if base64::engine::general_purpose::STANDARD.decode_vec(chunk.audio_base_64.as_bytes(), &mut raw).is_err() {
                        return refuse(ws, "input_error", "audio_base_64 is not valid base64").await;
                    }
                    audio_bytes += raw.len() as u64;
                    shared.stats.audio_bytes.fetch_add(raw.len() as u64, Ordering::Relaxed);
                    rec.push(pcm.decode(&raw), &mut out);
                    if chunk.commit {
                        outbox.release_all(Instant::now());
                        rec.finalize(&mut out);
                    }
                    st.schedule(&mut out, &mut outbox, cfg.final_delay);
                    if let Some(limit) = cfg.fail_after_audio_ms {
                        if audio_bytes * 1000 / bytes_per_s.max(1) >= limit {
                            let _ = outbox.send_all(&mut ws).await;
                            return fail(ws, "transcriber_error", "Transcriber failed unexpectedly", 1011).await;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    return refuse(ws, "input_error", "audio must be sent as input_audio_chunk JSON").await;
                }
                Some(Ok(_)) => {}
            },
            () = &mut due, if outbox.next_due().is_some() => {
                if outbox.send_due(&mut ws).await.is_err() {
                    return;
                }
            },
        }
        wsconn::rearm(due.as_mut(), &outbox);
    }
}

struct Render {
    vad: bool,
    timestamps: bool,
    /// Manual mode: text of utterances the VAD ended but the client has not committed yet.
    uncommitted: String,
}

impl Render {
    fn schedule(&mut self, out: &mut Vec<Out>, outbox: &mut Outbox, final_delay: Duration) {
        let now = Instant::now();
        for o in out.drain(..) {
            match o {
                Out::Interim(hyp) => outbox.push(now, partial(&self.joined(&hyp.transcript))),
                Out::Final { hyp, delay: true, .. } if !self.vad => {
                    // Manual commit strategy: the VAD does not commit; the text waits.
                    self.uncommitted = self.joined(&hyp.transcript);
                    outbox.push(now, partial(&self.uncommitted));
                }
                Out::Final { hyp, delay, .. } => {
                    let text = self.joined(&hyp.transcript);
                    self.uncommitted.clear();
                    let due = if delay { now + final_delay } else { now };
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
            json!({"text": w.punctuated, "start": wsconn::ms(w.start_s), "end": wsconn::ms(w.end_s),
                   "type": "word", "logprob": -0.05})
        })
        .collect();
    json!({"message_type": "committed_transcript_with_timestamps", "text": text, "language_code": "en", "words": words})
        .to_string()
}
