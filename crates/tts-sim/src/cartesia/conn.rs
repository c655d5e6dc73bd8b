//! One simulated `/tts/websocket` connection: many contexts, text buffered to sentence ends
//! (or `flush`, `continue:false`, `max_buffer_delay_ms`), paced chunks, word timestamps,
//! `flush_done`, `done`, `cancel`, and `error` messages for bad requests.

use super::CartesiaSimConfig;
use crate::frame;
use crate::pacer::{self, Renderer, Schedule};
use base64::Engine as _;
use futures::SinkExt;
use serde::Deserialize;
use simkit::{Stats, Ws as SimWs};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// Client messages: a generation request or a cancel. Not `Debug`-printed with keys: none here.
#[derive(Deserialize)]
struct ClientMsg {
    context_id: Option<String>,
    #[serde(default)]
    cancel: Option<bool>,
    model_id: Option<String>,
    transcript: Option<String>,
    voice: Option<VoiceSpec>,
    output_format: Option<OutputFormat>,
    #[serde(default, rename = "continue")]
    continue_: Option<bool>,
    #[serde(default)]
    flush: Option<bool>,
    #[serde(default)]
    add_timestamps: Option<bool>,
    #[serde(default)]
    max_buffer_delay_ms: Option<u64>,
}

#[derive(Deserialize)]
struct VoiceSpec {
    mode: Option<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
struct OutputFormat {
    container: Option<String>,
    encoding: Option<String>,
    sample_rate: Option<u32>,
}

struct Ctx {
    renderer: Renderer,
    buffer: String,
    /// Characters queued for audio so far: the timestamps clock.
    queued: u64,
    flush_id: u32,
    timestamps: bool,
    max_delay: Duration,
    last_text: Instant,
}

enum Out {
    Audio { ctx: String, chars: Vec<char>, flush_id: u32, stamps: Option<String> },
    Json { ctx: String, json: String, last: bool },
}

impl Out {
    fn ctx(&self) -> &str {
        match self {
            Out::Audio { ctx, .. } | Out::Json { ctx, .. } => ctx,
        }
    }
}

struct Conn<'a> {
    cfg: &'a CartesiaSimConfig,
    stats: &'a Stats,
    contexts: HashMap<String, Ctx>,
    /// Contexts finished with `continue:false`: further input is refused.
    closed: Vec<String>,
    schedule: Schedule<Out>,
    voiced: u64,
}

pub(super) async fn run(mut ws: SimWs, cfg: &CartesiaSimConfig, stats: &Stats, stop: CancellationToken) {
    let mut c = Conn {
        cfg,
        stats,
        contexts: HashMap::new(),
        closed: Vec::new(),
        schedule: Schedule::new(cfg.voicing),
        voiced: 0,
    };
    let mut replies = Vec::new();
    loop {
        let due = c.schedule.next_due();
        let buffered = c.buffer_deadline();
        tokio::select! {
            () = stop.cancelled() => return frame::going_away(&mut ws).await,
                        text = frame::next_text(&mut ws) => {
                let Some(text) = text else { return };
                c.on_text(&text, Instant::now(), &mut replies);
                for r in replies.drain(..) {
                    if ws.send(Message::text(r)).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let Some(out) = c.schedule.pop() else { continue };
                if !c.send(&mut ws, out).await {
                    return;
                }
                if c.cfg.voicing.fails_at(c.voiced) {
                    let err = serde_json::json!({"type":"error","done":true,"status_code":500,
                        "title":"Internal Server Error","message":"generation failed","error_code":"internal_error"});
                    let _ = ws.send(Message::text(err.to_string())).await;
                    simkit::close(&mut ws, 1011, "internal error").await;
                    return;
                }
            }
            () = tokio::time::sleep_until(buffered.unwrap_or_else(Instant::now)), if buffered.is_some() => {
                c.release_waiting(Instant::now());
            }
        }
    }
}

fn error(ctx: Option<&str>, status: u16, title: &str, message: &str) -> String {
    serde_json::json!({"type":"error","context_id":ctx,"done":true,"status_code":status,"title":title,
        "message":message,"request_id":"sim"})
    .to_string()
}

impl Conn<'_> {
    /// The earliest time buffered text stops waiting for a sentence end.
    fn buffer_deadline(&self) -> Option<Instant> {
        self.contexts.values().filter(|c| !c.buffer.trim().is_empty()).map(|c| c.last_text + c.max_delay).min()
    }

    fn release_waiting(&mut self, now: Instant) {
        let ready: Vec<String> = self
            .contexts
            .iter()
            .filter(|(_, c)| !c.buffer.trim().is_empty() && c.last_text + c.max_delay <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            self.generate_all(&id, now);
        }
    }

    fn on_text(&mut self, raw: &str, now: Instant, replies: &mut Vec<String>) {
        let Ok(msg) = serde_json::from_str::<ClientMsg>(raw) else {
            replies.push(error(None, 400, "Invalid request", "message is not a valid generation request"));
            return;
        };
        let Some(id) = msg.context_id.clone().filter(|c| !c.is_empty()) else {
            replies.push(error(None, 400, "Invalid request", "context_id is required"));
            return;
        };
        if msg.cancel == Some(true) {
            self.contexts.remove(&id);
            self.schedule.retain(|o| o.ctx() != id);
            return;
        }
        if let Err(why) = self.validate(&msg, &id) {
            replies.push(error(Some(&id), 400, "Invalid request", &why));
            return;
        }
        let rate = msg.output_format.as_ref().and_then(|f| f.sample_rate).unwrap_or(16000);
        let max_delay = msg.max_buffer_delay_ms.map_or(self.cfg.max_buffer_delay, Duration::from_millis);
        let ms_per_char = self.cfg.voicing.ms_per_char;
        let ctx = self.contexts.entry(id.clone()).or_insert_with(|| Ctx {
            renderer: Renderer::new(rate, ms_per_char),
            buffer: String::new(),
            queued: 0,
            flush_id: 0,
            timestamps: false,
            max_delay,
            last_text: now,
        });
        ctx.timestamps = msg.add_timestamps.unwrap_or(false);
        ctx.max_delay = max_delay;
        ctx.last_text = now;
        let transcript = msg.transcript.unwrap_or_default();
        if !transcript.trim().is_empty() {
            self.stats.received(transcript.chars().count());
        }
        ctx.buffer.push_str(&transcript);
        if msg.flush == Some(true) {
            self.generate_all(&id, now);
            if let Some(ctx) = self.contexts.get_mut(&id) {
                ctx.flush_id += 1;
                let json = serde_json::json!({"type":"flush_done","context_id":id,"done":false,"flush_done":true,
                    "flush_id":ctx.flush_id,"status_code":206});
                self.schedule.then(Out::Json { ctx: id.clone(), json: json.to_string(), last: false }, now);
            }
        }
        if msg.continue_ != Some(true) {
            self.generate_all(&id, now);
            let json = serde_json::json!({"type":"done","context_id":id,"done":true,"status_code":206});
            self.schedule.then(Out::Json { ctx: id.clone(), json: json.to_string(), last: true }, now);
            self.closed.push(id);
            return;
        }
        // Without a flush, the server waits for a sentence end before generating.
        let Some(ctx) = self.contexts.get_mut(&id) else { return };
        if let Some(cut) = pacer::sentence_cut(&ctx.buffer) {
            let chunk: String = ctx.buffer.drain(..cut).collect();
            self.generate(&id, &chunk, now);
        }
    }

    fn validate(&self, msg: &ClientMsg, id: &str) -> Result<(), String> {
        if self.closed.iter().any(|c| c == id) {
            return Err(format!("context {id} has already received its last input"));
        }
        if msg.model_id.as_deref().is_none_or(str::is_empty) {
            return Err("model_id is required".into());
        }
        if msg.transcript.is_none() {
            return Err("transcript is required".into());
        }
        let voice_ok = msg
            .voice
            .as_ref()
            .is_some_and(|v| v.mode.as_deref() == Some("id") && v.id.as_deref().is_some_and(|i| !i.is_empty()));
        if !voice_ok {
            return Err("voice must be {\"mode\":\"id\",\"id\":\"…\"}".into());
        }
        let Some(f) = msg.output_format.as_ref() else {
            return Err("output_format is required".into());
        };
        if f.container.as_deref() != Some("raw") || f.encoding.as_deref() != Some("pcm_s16le") {
            return Err("the simulator produces container raw, encoding pcm_s16le only".into());
        }
        if !f.sample_rate.is_some_and(|r| RATES.contains(&r)) {
            return Err("sample_rate must be one of 8000, 16000, 22050, 24000, 44100, 48000".into());
        }
        if msg.max_buffer_delay_ms.is_some_and(|d| d > 5000) {
            return Err("max_buffer_delay_ms must be 0-5000".into());
        }
        Ok(())
    }

    fn generate_all(&mut self, id: &str, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(id) else { return };
        let chunk = std::mem::take(&mut ctx.buffer);
        self.generate(id, &chunk, now);
    }

    /// Queues `text` as chunks, the first followed by the generation's word timestamps.
    fn generate(&mut self, id: &str, text: &str, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(id) else { return };
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let ms = self.schedule.ms_per_char();
        // Words are separated from the previous generation by one (voiced) space.
        let spaced = if ctx.queued > 0 { format!(" {text}") } else { text.to_string() };
        let mut stamps = ctx.timestamps.then(|| {
            serde_json::json!({"type":"timestamps","context_id":id,"done":false,"status_code":206,
                "word_timestamps": pacer::word_times(&spaced, ctx.queued, ms)})
            .to_string()
        });
        ctx.queued += spaced.chars().count() as u64;
        let flush_id = ctx.flush_id + 1;
        self.schedule.speak(&spaced, now, |chars| Out::Audio {
            ctx: id.to_string(),
            chars,
            flush_id,
            stamps: stamps.take(),
        });
    }

    /// False when the client has gone.
    async fn send(&mut self, ws: &mut SimWs, out: Out) -> bool {
        match out {
            Out::Audio { ctx, chars, flush_id, stamps } => {
                let Some(c) = self.contexts.get_mut(&ctx) else { return true };
                let pcm = c.renderer.render(&chars);
                self.voiced += chars.len() as u64;
                let data = base64::engine::general_purpose::STANDARD.encode(pcm);
                let chunk = serde_json::json!({"type":"chunk","context_id":ctx,"data":data,"done":false,
                    "status_code":206,"step_time":5.0,"flush_id":flush_id});
                if ws.send(Message::text(chunk.to_string())).await.is_err() {
                    return false;
                }
                match stamps {
                    Some(s) => ws.send(Message::text(s)).await.is_ok(),
                    None => true,
                }
            }
            Out::Json { ctx, json, last } => {
                if last {
                    self.contexts.remove(&ctx);
                }
                ws.send(Message::text(json)).await.is_ok()
            }
        }
    }
}
