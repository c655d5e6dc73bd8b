//! One simulated Gladia live session: binary (or `audio_chunk`) PCM in, envelopes out, and on
//! `stop_recording` the post-processing tail ending with `end_session` and a normal close.

use super::{Session, Shared};
use crate::sim::recognizer::{Hyp, Out, RecOpts, Recognizer};
use crate::sim::wsconn::{self, Outbox, Pcm};
use axum::extract::ws::{Message, WebSocket};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMsg {
    AudioChunk { data: ChunkData },
    StopRecording,
}

#[derive(Deserialize)]
struct ChunkData {
    chunk: String,
}

pub(super) async fn run(mut ws: WebSocket, s: Session, shared: &Shared) {
    let cfg = &shared.cfg;
    let opts = RecOpts {
        sample_rate: s.sample_rate,
        interim_every_frames: if s.partials { (cfg.interim_every_ms / 20).max(1) } else { 0 },
        vad_events: s.speech_events,
        speech_final: true,
        hangover_frames: (s.endpointing_s * 50.0).round().max(1.0) as u32,
        utterance_end_ms: None,
        punctuate: true,
    };
    let bytes_per_s = u64::from(s.sample_rate) * 2;
    let mut rec = Recognizer::new(opts, cfg.catalog.clone());
    let mut r = Render { s: &s, utterances: 0, full: Vec::new() };
    let mut out = Vec::new();
    let mut outbox = Outbox::default();
    let mut pcm = Pcm::default();
    let mut raw = Vec::with_capacity(4096);
    let mut audio_bytes = 0u64;
    let mut recording = false;
    let due = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(due);
    if s.lifecycle && ws.send(r.msg("start_session", json!({}))).await.is_err() {
        return;
    }

    loop {
        let audio: Option<&[u8]> = tokio::select! {
            () = shared.stop.cancelled() => return,
            msg = ws.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Binary(bytes))) => {
                    raw.clear();
                    raw.extend_from_slice(&bytes);
                    Some(&raw)
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ClientMsg>(&text) {
                    Ok(ClientMsg::AudioChunk { data }) => {
                        raw.clear();
                        if base64::engine::general_purpose::STANDARD.decode_vec(data.chunk.as_bytes(), &mut raw).is_err() {
                            return error_close(&mut ws, &r, "audio_chunk.data.chunk is not valid base64", 400, 1008).await;
                        }
                        Some(&raw)
                    }
                    Ok(ClientMsg::StopRecording) => {
                        rec.flush(&mut out);
                        r.schedule(&mut out, &mut outbox, cfg.final_delay);
                        let duration_s = audio_bytes as f64 / bytes_per_s.max(1) as f64;
                        if outbox.send_all(&mut ws).await.is_ok() && r.finish(&mut ws, duration_s).await.is_ok() {
                            wsconn::close(&mut ws, 1000, "").await;
                        }
                        return;
                    }
                    Err(_) => return error_close(&mut ws, &r, "unknown message type", 400, 1008).await,
                },
                Some(Ok(_)) => None,
            },
            () = &mut due, if outbox.next_due().is_some() => {
                if outbox.send_due(&mut ws).await.is_err() {
                    return;
                }
                None
            },
        };
        if let Some(bytes) = audio {
            if !recording {
                recording = true;
                if s.lifecycle && ws.send(r.msg("start_recording", json!({}))).await.is_err() {
                    return;
                }
            }
            audio_bytes += bytes.len() as u64;
            shared.stats.audio_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            rec.push(pcm.decode(bytes), &mut out);
            r.schedule(&mut out, &mut outbox, cfg.final_delay);
            if let Some(limit) = cfg.fail_after_audio_ms {
                if audio_bytes * 1000 / bytes_per_s.max(1) >= limit {
                    return error_close(&mut ws, &r, "Internal server error", 500, 1011).await;
                }
            }
        }
        wsconn::rearm(due.as_mut(), &outbox);
    }
}

async fn error_close(ws: &mut WebSocket, r: &Render<'_>, message: &str, code: u16, close_code: u16) {
    if ws.send(r.msg("error", json!({"message": message, "code": code}))).await.is_ok() {
        wsconn::close(ws, close_code, "").await;
    }
}

struct Render<'a> {
    s: &'a Session,
    utterances: u32,
    /// Final utterances, for `post_transcript`.
    full: Vec<Value>,
}

impl Render<'_> {
    fn envelope(&self, kind: &str, data: Value) -> String {
        json!({"session_id": self.s.id, "created_at": rfc3339_now(), "type": kind, "data": data}).to_string()
    }

    fn msg(&self, kind: &str, data: Value) -> Message {
        Message::text(self.envelope(kind, data))
    }

    fn schedule(&mut self, out: &mut Vec<Out>, outbox: &mut Outbox, final_delay: Duration) {
        let now = Instant::now();
        for o in out.drain(..) {
            match o {
                Out::SpeechStarted { at_s } => {
                    outbox.push(now, self.envelope("speech_start", json!({"time": wsconn::ms(at_s), "channel": 0})));
                }
                Out::Interim(hyp) => {
                    let u = self.utterance(&hyp);
                    outbox.push(now, self.transcript(u, false));
                }
                Out::Final { hyp, delay, .. } => {
                    let due = if delay { now + final_delay } else { now };
                    let u = self.utterance(&hyp);
                    let end = u.get("end").cloned().unwrap_or(Value::Null);
                    if !hyp.transcript.is_empty() {
                        self.full.push(u.clone());
                        outbox.push(due, self.transcript(u, true));
                        self.utterances += 1;
                    }
                    if self.s.speech_events && delay {
                        outbox.push(due, self.envelope("speech_end", json!({"time": end, "channel": 0})));
                    }
                }
                Out::UtteranceEnd { .. } => {}
            }
        }
    }

    fn transcript(&self, utterance: Value, is_final: bool) -> String {
        let id = format!("00_{:08}", self.utterances);
        self.envelope("transcript", json!({"id": id, "is_final": is_final, "utterance": utterance}))
    }

    /// Gladia's utterance: times span the words (seconds from the start of the stream).
    fn utterance(&self, hyp: &Hyp) -> Value {
        let (start, end) = match (hyp.words.first(), hyp.words.last()) {
            (Some(a), Some(b)) => (a.start_s, b.end_s),
            _ => (hyp.start_s, hyp.end_s),
        };
        let words: Vec<_> = hyp
            .words
            .iter()
            .map(|w| json!({"word": format!(" {}", w.punctuated), "start": wsconn::ms(w.start_s), "end": wsconn::ms(w.end_s), "confidence": 0.97}))
            .collect();
        json!({
            "start": wsconn::ms(start),
            "end": wsconn::ms(end),
            "confidence": 0.97,
            "channel": 0,
            "text": format!(" {}", hyp.transcript),
            "language": self.s.language,
            "words": words,
        })
    }

    /// After `stop_recording`: acknowledgment, end of recording, post-processing, end of session.
    async fn finish(&self, ws: &mut WebSocket, duration_s: f64) -> Result<(), axum::Error> {
        let duration = wsconn::ms(duration_s);
        if self.s.acknowledgments {
            ws.send(self.msg("stop_recording", json!({"acknowledged": true}))).await?;
        }
        if self.s.lifecycle {
            ws.send(self.msg("end_recording", json!({"recording_duration": duration}))).await?;
        }
        if self.s.post_processing {
            let text = self.full.iter().filter_map(|u| u.get("text")?.as_str()).collect::<String>();
            let transcription =
                json!({"full_transcript": text.trim(), "languages": [self.s.language], "utterances": self.full});
            ws.send(self.msg("post_transcript", transcription.clone())).await?;
            let metadata = json!({
                "audio_duration": duration,
                "number_of_distinct_channels": 1,
                "billing_time": duration,
                "transcription_time": 0.2,
            });
            ws.send(self.msg("post_final_transcript", json!({"metadata": metadata, "transcription": transcription})))
                .await?;
        }
        if self.s.lifecycle {
            ws.send(self.msg("end_session", json!({}))).await?;
        }
        Ok(())
    }
}

/// `2024-08-29T22:37:55.202Z` without a date crate (civil-from-days, Howard Hinnant).
pub(super) fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}
