//! One simulated Cartesia stream: binary PCM in, `transcript` deltas out, `finalize` →
//! `flush_done`, `close` → `done` and a normal close.

use super::{error_body, Session, Shared};
use crate::sim::recognizer::{Hyp, Out, RecOpts, Recognizer};
use crate::sim::wsconn::{self, Outbox, Pcm};
use axum::extract::ws::{Message, WebSocket};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

pub(super) async fn run(mut ws: WebSocket, s: Session, shared: &Shared) {
    let cfg = &shared.cfg;
    let request_id = uuid::Uuid::new_v4().to_string();
    let whisper = s.model.starts_with("ink-whisper");
    let opts = RecOpts {
        sample_rate: s.sample_rate,
        interim_every_frames: if whisper { 0 } else { (cfg.interim_every_ms / 20).max(1) },
        vad_events: false,
        speech_final: true,
        hangover_frames: (s.max_silence_s * 50.0).round() as u32,
        utterance_end_ms: None,
        punctuate: true,
    };
    let bytes_per_s = u64::from(s.sample_rate) * 2;
    let mut rec = Recognizer::new(opts, cfg.catalog.clone());
    let r = Render { request_id: &request_id, language: &s.language };
    let mut out = Vec::new();
    let mut outbox = Outbox::default();
    let mut pcm = Pcm::default();
    let mut audio_bytes = 0u64;
    let due = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(due);

    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            msg = ws.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Binary(bytes))) => {
                    audio_bytes += bytes.len() as u64;
                    shared.stats.audio_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    rec.push(pcm.decode(&bytes), &mut out);
                    r.schedule(&mut out, &mut outbox, cfg.final_delay);
                    if let Some(limit) = cfg.fail_after_audio_ms {
                        if audio_bytes * 1000 / bytes_per_s.max(1) >= limit {
                            let body = error_body(500, "Internal Server Error", "transcription failed", "internal_error");
                            let _ = ws.send(Message::text(body.to_string())).await;
                            wsconn::close(&mut ws, 1011, "internal error").await;
                            return;
                        }
                    }
                }
                Some(Ok(Message::Text(cmd))) => match cmd.as_str().trim() {
                    "finalize" => {
                        outbox.release_all(Instant::now());
                        rec.finalize(&mut out);
                        r.schedule(&mut out, &mut outbox, cfg.final_delay);
                        outbox.push(Instant::now(), json!({"type": "flush_done", "request_id": r.request_id}).to_string());
                    }
                    // `done` is the command's name in older Cartesia docs.
                    "close" | "done" => {
                        rec.finalize(&mut out);
                        r.schedule(&mut out, &mut outbox, cfg.final_delay);
                        outbox.push(Instant::now(), json!({"type": "done", "request_id": r.request_id}).to_string());
                        if outbox.send_all(&mut ws).await.is_ok() {
                            wsconn::close(&mut ws, 1000, "").await;
                        }
                        return;
                    }
                    _ => {
                        let body = error_body(400, "Invalid command", "expected finalize or close", "invalid_request");
                        let _ = ws.send(Message::text(body.to_string())).await;
                        wsconn::close(&mut ws, 1008, "").await;
                        return;
                    }
                },
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

struct Render<'a> {
    request_id: &'a str,
    language: &'a str,
}

impl Render<'_> {
    fn schedule(&self, out: &mut Vec<Out>, outbox: &mut Outbox, final_delay: Duration) {
        let now = Instant::now();
        for o in out.drain(..) {
            let (due, msg) = match o {
                Out::Interim(hyp) => (now, self.transcript(&hyp, false)),
                Out::Final { hyp, delay, .. } => {
                    (if delay { now + final_delay } else { now }, self.transcript(&hyp, true))
                }
                Out::SpeechStarted { .. } | Out::UtteranceEnd { .. } => continue,
            };
            outbox.push(due, msg);
        }
    }

    /// A delta: the text carries its own leading space; `duration` covers the audio since the
    /// previous final.
    fn transcript(&self, hyp: &Hyp, is_final: bool) -> String {
        let text = if hyp.transcript.is_empty() { String::new() } else { format!(" {}", hyp.transcript) };
        let words: Vec<_> = hyp
            .words
            .iter()
            .map(|w| json!({"word": w.punctuated, "start": wsconn::ms(w.start_s), "end": wsconn::ms(w.end_s)}))
            .collect();
        json!({
            "type": "transcript",
            "request_id": self.request_id,
            "text": text,
            "is_final": is_final,
            "duration": wsconn::ms(hyp.end_s - hyp.start_s),
            "language": self.language,
            "words": words,
        })
        .to_string()
    }
}
