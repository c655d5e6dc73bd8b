//! One simulated `multi-stream-input` connection (protocols/tts.md C2): contexts keyed by
//! `context_id`, each with its own buffer, schedule and timing clock; `flush` per context;
//! `close_context` drops unflushed text, lets audio already generated finish, then sends that
//! context's `isFinal`; `close_socket` finishes every context first, then closes.

use super::buffer::{GenerationConfig, TextBuffer};
use super::{ElevenLabs, Handshake};
use crate::frame;
use crate::speech::Speaker;
use base64::Engine as _;
use futures::SinkExt;
use serde::Deserialize;
use serde_json::json;
use simkit::{Stats, Ws};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// The context a message without `context_id` goes to.
const DEFAULT_CONTEXT: &str = "default";

/// Client message fields the provider reads. Not `Debug`: it may carry a key.
#[derive(Deserialize)]
struct ClientMsg {
    text: Option<String>,
    context_id: Option<String>,
    #[serde(default)]
    flush: bool,
    #[serde(default)]
    close_context: bool,
    #[serde(default)]
    close_socket: bool,
    #[serde(default)]
    try_trigger_generation: bool,
    #[serde(default)]
    generation_config: Option<GenerationConfig>,
    #[serde(default, rename = "xi_api_key", alias = "xi-api-key")]
    key: Option<String>,
    #[serde(default)]
    authorization: Option<String>,
}

struct Context {
    buffer: TextBuffer,
    speaker: Speaker,
    closing: bool,
}

/// A connection-level failure: an optional JSON error, then a close frame.
struct Reject {
    json: String,
    code: u16,
    reason: &'static str,
}

fn reject(error: &'static str, message: &str) -> Reject {
    Reject { json: json!({"message": message, "error": error, "code": 1008}).to_string(), code: 1008, reason: error }
}

struct Conn<'a> {
    sim: &'a ElevenLabs,
    stats: &'a Stats,
    hs: Handshake,
    contexts: HashMap<String, Context>,
    closing_socket: bool,
    /// Characters voiced on this socket: the fault-injection counter.
    voiced_total: u64,
}

pub(super) async fn run(mut ws: Ws, hs: Handshake, sim: &ElevenLabs, stats: &Stats, stop: CancellationToken) {
    tracing::debug!(voice = %hs.voice, format = ?hs.format, "elevenlabs sim: multi-context socket opened");
    let mut c = Conn { sim, stats, hs, contexts: HashMap::new(), closing_socket: false, voiced_total: 0 };
    let mut last_activity = Instant::now();
    let mut out = Vec::new();
    loop {
        c.finish_closed(&mut out);
        for m in out.drain(..) {
            if ws.send(Message::text(m)).await.is_err() {
                return;
            }
        }
        if c.closing_socket && c.contexts.is_empty() {
            simkit::close(&mut ws, 1000, "").await;
            return;
        }
        let next = c.contexts.iter().filter_map(|(id, ctx)| ctx.speaker.due().map(|d| (d, id.clone()))).min();
        let generating = c.contexts.values().any(|ctx| !ctx.speaker.is_idle());
        tokio::select! {
            () = stop.cancelled() => return frame::going_away(&mut ws).await,
                        text = frame::next_text(&mut ws) => {
                let Some(text) = text else { return };
                last_activity = Instant::now();
                if let Err(r) = c.on_text(&text, last_activity) {
                    let _ = ws.send(Message::text(r.json)).await;
                    simkit::close(&mut ws, r.code, r.reason).await;
                    return;
                }
            }
            () = tokio::time::sleep_until(next.as_ref().map_or_else(Instant::now, |(d, _)| *d)), if next.is_some() => {
                let Some((_, id)) = next else { continue };
                let Some(json) = c.render(&id) else { continue };
                if ws.send(Message::text(json)).await.is_err() {
                    return;
                }
                last_activity = Instant::now();
                if sim.cfg.voicing.fails_at(c.voiced_total) {
                    simkit::close(&mut ws, 1011, "internal server error").await;
                    return;
                }
            }
            () = tokio::time::sleep_until(last_activity + c.hs.inactivity), if !generating => {
                let secs = c.hs.inactivity.as_secs();
                let reason = format!("Have not received a new text input within the timeout of {secs} seconds. Streaming input terminated.");
                simkit::close(&mut ws, 1008, &reason).await;
                return;
            }
        }
    }
}

impl Conn<'_> {
    fn on_text(&mut self, raw: &str, now: Instant) -> Result<(), Reject> {
        let msg: ClientMsg = serde_json::from_str(raw)
            .map_err(|_| reject("invalid_message", "Message is not valid JSON of the expected shape"))?;
        if !self.hs.authed {
            let bearer = msg.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
            let key = msg.key.as_deref().or(bearer).unwrap_or_default();
            self.stats.saw_key(key);
            if !self.stats.keys.contains(key) {
                return Err(reject("invalid_api_key", "Invalid API key"));
            }
            self.hs.authed = true;
        }
        if msg.close_socket {
            self.sim.sockets_closed.fetch_add(1, Ordering::Relaxed);
            self.closing_socket = true;
            for ctx in self.contexts.values_mut() {
                if let Some(chunk) = ctx.buffer.take_all() {
                    ctx.speaker.say(&chunk, now);
                }
                ctx.closing = true;
            }
            return Ok(());
        }
        let id = msg.context_id.unwrap_or_else(|| DEFAULT_CONTEXT.to_string());
        if msg.close_context {
            self.sim.contexts_closed.fetch_add(1, Ordering::Relaxed);
            if let Some(ctx) = self.contexts.get_mut(&id) {
                ctx.buffer = TextBuffer::new(self.hs.auto_mode);
                ctx.closing = true;
            }
            return Ok(());
        }
        if !self.contexts.contains_key(&id) {
            let mut buffer = TextBuffer::new(self.hs.auto_mode);
            if !buffer.configure(msg.generation_config) {
                return Err(reject("invalid_generation_config", "chunk_length_schedule items must be 50-500"));
            }
            let cfg = &self.sim.cfg;
            self.contexts.insert(
                id.clone(),
                Context { buffer, speaker: Speaker::new(&cfg.voicing, self.hs.format.sample_rate()), closing: false },
            );
        }
        let Some(ctx) = self.contexts.get_mut(&id).filter(|c| !c.closing) else { return Ok(()) };
        let text = msg.text.unwrap_or_default();
        if !text.trim().is_empty() {
            self.stats.received(text.chars().count());
            if let Some(chunk) = ctx.buffer.push(&text, msg.try_trigger_generation) {
                ctx.speaker.say(&chunk, now);
            }
        }
        if msg.flush {
            if let Some(chunk) = ctx.buffer.take_all() {
                ctx.speaker.say(&chunk, now);
            }
        }
        Ok(())
    }

    /// Closed contexts whose audio is all out: their `isFinal`.
    fn finish_closed(&mut self, out: &mut Vec<String>) {
        self.contexts.retain(|id, ctx| {
            if ctx.closing && ctx.speaker.is_idle() {
                out.push(json!({"isFinal": true, "contextId": id}).to_string());
                return false;
            }
            true
        });
    }

    /// One `audio` message with context-relative alignment.
    fn render(&mut self, id: &str) -> Option<String> {
        let ctx = self.contexts.get_mut(id)?;
        let p = ctx.speaker.next()?;
        let n = p.chars.len() as u64;
        let alignment = json!({
            "chars": p.chars.iter().map(char::to_string).collect::<Vec<_>>(),
            "charStartTimesMs": (p.first_index..p.first_index + n).map(|i| i * p.ms_per_char).collect::<Vec<_>>(),
            "charDurationsMs": vec![p.ms_per_char; p.chars.len()],
        });
        let audio = base64::engine::general_purpose::STANDARD.encode(p.pcm);
        self.voiced_total += n;
        Some(
            json!({"audio": audio, "alignment": alignment, "normalizedAlignment": alignment, "contextId": id})
                .to_string(),
        )
    }
}
