//! One simulated Gladia live session: binary (or `audio_chunk`) PCM in, envelopes out, and on
//! `stop_recording` the post-processing tail ending with `end_session` and a normal close.

use super::{Session, INTERIM_EVERY_MS};
use crate::audio::{ms, rfc3339_now, Listener};
use crate::recognizer::{Hyp, Out, RecOpts};
use crate::SimConfig;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use simkit::{Flow, Message, Outbox, Protocol, Stats};
use std::sync::Arc;
use std::time::Duration;

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

pub(super) struct Conn {
    render: Render,
    listen: Listener,
    /// Decoded audio of an `audio_chunk` (reused).
    raw: Vec<u8>,
    recording: bool,
    idle: Option<Duration>,
}

impl Conn {
    pub(super) fn new(s: Session, cfg: &SimConfig, stats: Arc<Stats>) -> Self {
        let opts = RecOpts {
            sample_rate: s.sample_rate,
            interim_every_frames: if s.partials { (INTERIM_EVERY_MS / 20).max(1) } else { 0 },
            vad_events: s.speech_events,
            speech_final: true,
            hangover_frames: (s.endpointing_s * 50.0).round().max(1.0) as u32,
            utterance_end_ms: None,
            punctuate: true,
        };
        Self {
            listen: Listener::new(opts, cfg, stats),
            render: Render { s, utterances: 0, full: Vec::new() },
            raw: Vec::with_capacity(4096),
            recording: false,
            idle: cfg.idle_timeout,
        }
    }

    fn audio(&mut self, bytes: &[u8], out: &mut Outbox) -> Flow {
        if !self.recording {
            self.recording = true;
            if self.render.s.lifecycle {
                out.now(self.render.envelope("start_recording", json!({})));
            }
        }
        let failed = self.listen.audio(bytes);
        self.render.schedule(&mut self.listen, out);
        if failed {
            out.clear();
            return self.render.error_close(out, "Internal server error", 500, 1011);
        }
        Flow::Active
    }
}

impl Protocol for Conn {
    fn on_open(&mut self, out: &mut Outbox) {
        if self.render.s.lifecycle {
            out.now(self.render.envelope("start_session", json!({})));
        }
    }

    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        match msg {
            Message::Binary(bytes) => self.audio(&bytes, out),
            Message::Text(text) => match serde_json::from_str::<ClientMsg>(&text) {
                Ok(ClientMsg::AudioChunk { data }) => {
                    let mut raw = std::mem::take(&mut self.raw);
                    raw.clear();
                    let flow = if base64::engine::general_purpose::STANDARD
                        .decode_vec(data.chunk.as_bytes(), &mut raw)
                        .is_err()
                    {
                        out.clear();
                        self.render.error_close(out, "audio_chunk.data.chunk is not valid base64", 400, 1008)
                    } else {
                        self.audio(&raw, out)
                    };
                    self.raw = raw;
                    flow
                }
                Ok(ClientMsg::StopRecording) => {
                    self.listen.flush();
                    self.render.schedule(&mut self.listen, out);
                    self.render.finish(out, self.listen.audio_s());
                    Flow::close(1000, "")
                }
                Err(_) => {
                    out.clear();
                    self.render.error_close(out, "unknown message type", 400, 1008)
                }
            },
            _ => Flow::Continue,
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }
}

struct Render {
    s: Session,
    utterances: u32,
    /// Final utterances, for `post_transcript`.
    full: Vec<Value>,
}

impl Render {
    fn envelope(&self, kind: &str, data: Value) -> String {
        json!({"session_id": self.s.id, "created_at": rfc3339_now(), "type": kind, "data": data}).to_string()
    }

    fn error_close(&self, out: &mut Outbox, message: &str, code: u16, close_code: u16) -> Flow {
        out.now(self.envelope("error", json!({"message": message, "code": code})));
        Flow::close(close_code, "")
    }

    fn schedule(&mut self, listen: &mut Listener, outbox: &mut Outbox) {
        for (due, o) in listen.results(false) {
            match o {
                Out::SpeechStarted { at_s } => {
                    outbox.push(due, self.envelope("speech_start", json!({"time": ms(at_s), "channel": 0})));
                }
                Out::Interim(hyp) => {
                    let u = self.utterance(&hyp);
                    outbox.push(due, self.transcript(u, false));
                }
                Out::Final { hyp, delay, .. } => {
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
            .map(|w| json!({"word": format!(" {}", w.punctuated), "start": ms(w.start_s), "end": ms(w.end_s), "confidence": 0.97}))
            .collect();
        json!({
            "start": ms(start),
            "end": ms(end),
            "confidence": 0.97,
            "channel": 0,
            "text": format!(" {}", hyp.transcript),
            "language": self.s.language,
            "words": words,
        })
    }

    /// After `stop_recording`: acknowledgment, end of recording, post-processing, end of session.
    fn finish(&self, out: &mut Outbox, duration_s: f64) {
        let duration = ms(duration_s);
        if self.s.acknowledgments {
            out.now(self.envelope("stop_recording", json!({"acknowledged": true})));
        }
        if self.s.lifecycle {
            out.now(self.envelope("end_recording", json!({"recording_duration": duration})));
        }
        if self.s.post_processing {
            let text = self.full.iter().filter_map(|u| u.get("text")?.as_str()).collect::<String>();
            let transcription =
                json!({"full_transcript": text.trim(), "languages": [self.s.language], "utterances": self.full});
            out.now(self.envelope("post_transcript", transcription.clone()));
            let metadata = json!({
                "audio_duration": duration,
                "number_of_distinct_channels": 1,
                "billing_time": duration,
                "transcription_time": 0.2,
            });
            out.now(
                self.envelope("post_final_transcript", json!({"metadata": metadata, "transcription": transcription})),
            );
        }
        if self.s.lifecycle {
            out.now(self.envelope("end_session", json!({})));
        }
    }
}
