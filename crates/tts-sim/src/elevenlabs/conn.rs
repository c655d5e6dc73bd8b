//! One simulated stream-input connection: auth by header or first message, text buffering,
//! paced audio with stream-relative alignment, `isFinal` after EOS, idle and fault closes.

use super::buffer::{GenerationConfig, TextBuffer};
use super::{ElevenLabs, Handshake};
use crate::frame;
use crate::voice::Voice;
use base64::Engine as _;
use futures::SinkExt;
use serde::Deserialize;
use simkit::{Stats, Ws};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Client message fields the provider reads. Not `Debug`: it may carry a key.
#[derive(Deserialize)]
struct ClientMsg {
    text: Option<String>,
    #[serde(default)]
    try_trigger_generation: Option<bool>,
    #[serde(default)]
    flush: Option<bool>,
    #[serde(default)]
    generation_config: Option<GenerationConfig>,
    #[serde(default, rename = "xi-api-key", alias = "xi_api_key")]
    key: Option<String>,
    #[serde(default)]
    authorization: Option<String>,
}

/// How a connection ends early: optional JSON error, then a close frame.
struct Reject {
    json: Option<String>,
    code: u16,
    reason: String,
}

impl Reject {
    fn new(error: &str, message: &str, code: u16) -> Self {
        let json = serde_json::json!({"message": message, "error": error, "code": code}).to_string();
        Self { json: Some(json), code, reason: error.to_string() }
    }
}

struct Piece {
    due: Instant,
    chars: Vec<char>,
}

struct Conn<'a> {
    sim: &'a ElevenLabs,
    stats: &'a Stats,
    hs: Handshake,
    first: bool,
    eos: bool,
    buffer: TextBuffer,
    pieces: VecDeque<Piece>,
    /// When the audio already queued has been produced; a new generation starts no earlier.
    next_free: Instant,
    voice: Voice,
    /// Characters voiced so far: alignment clock and fault-injection counter.
    voiced: u64,
    ms_per_char: u64,
    chars_per_piece: usize,
    pace: f64,
    samples: Vec<i16>,
    bytes: Vec<u8>,
}

pub(super) async fn run(mut ws: Ws, hs: Handshake, sim: &ElevenLabs, stats: &Stats, stop: CancellationToken) {
    tracing::debug!(voice = %hs.voice, format = ?hs.format, "elevenlabs sim: stream opened");
    let mut c = Conn::new(hs, sim, stats);
    let mut last_activity = Instant::now();
    loop {
        if c.eos && c.pieces.is_empty() {
            if ws.send(Message::text(r#"{"isFinal":true}"#)).await.is_ok() {
                simkit::close(&mut ws, 1000, "").await;
            }
            return;
        }
        let due = c.pieces.front().map(|p| p.due);
        tokio::select! {
            () = stop.cancelled() => return frame::going_away(&mut ws).await,
                        text = frame::next_text(&mut ws) => {
                let Some(text) = text else { return };
                last_activity = Instant::now();
                if let Err(r) = c.on_text(&text, last_activity) {
                    if let Some(json) = r.json {
                        let _ = ws.send(Message::text(json)).await;
                    }
                    simkit::close(&mut ws, r.code, &r.reason).await;
                    return;
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let Some(piece) = c.pieces.pop_front() else { continue };
                let json = c.render(&piece.chars);
                if ws.send(Message::text(json)).await.is_err() {
                    return;
                }
                last_activity = Instant::now();
                if c.sim.cfg.voicing.fails_at(c.voiced) {
                    simkit::close(&mut ws, 1011, "internal server error").await;
                    return;
                }
            }
            () = tokio::time::sleep_until(last_activity + c.hs.inactivity), if !c.eos && c.pieces.is_empty() => {
                let secs = c.hs.inactivity.as_secs();
                let reason = format!("Have not received a new text input within the timeout of {secs} seconds. Streaming input terminated.");
                simkit::close(&mut ws, 1008, &reason).await;
                return;
            }
        }
    }
}

impl<'a> Conn<'a> {
    fn new(hs: Handshake, sim: &'a ElevenLabs, stats: &'a Stats) -> Self {
        let v = &sim.cfg.voicing;
        Self {
            sim,
            stats,
            first: true,
            eos: false,
            buffer: TextBuffer::new(hs.auto_mode),
            pieces: VecDeque::new(),
            next_free: Instant::now(),
            voice: Voice::new(hs.format.sample_rate()),
            voiced: 0,
            ms_per_char: u64::from(v.ms_per_char),
            chars_per_piece: v.chars_per_piece(),
            pace: v.pace(),
            samples: Vec::new(),
            bytes: Vec::new(),
            hs,
        }
    }

    fn on_text(&mut self, raw: &str, now: Instant) -> Result<(), Reject> {
        let msg: ClientMsg = serde_json::from_str(raw)
            .map_err(|_| Reject::new("invalid_message", "Message is not valid JSON of the expected shape", 1008))?;
        if self.eos {
            return Ok(());
        }
        let first = std::mem::replace(&mut self.first, false);
        if first {
            self.authenticate(&msg)?;
            if !self.buffer.configure(msg.generation_config) {
                let message = "chunk_length_schedule items must be 50-500";
                return Err(Reject::new("invalid_generation_config", message, 1008));
            }
        }
        let Some(text) = msg.text else {
            return Err(Reject::new("invalid_message", "Field 'text' is required", 1008));
        };
        if text.is_empty() {
            self.eos = true;
            if let Some(chunk) = self.buffer.take_all() {
                self.enqueue(&chunk, now);
            }
            return Ok(());
        }
        let blank = text.trim().is_empty();
        if !blank {
            self.stats.received(text.chars().count());
        }
        // The first message's single space opens the stream; it is not text to voice.
        if !(first && blank) {
            if let Some(chunk) = self.buffer.push(&text, msg.try_trigger_generation.unwrap_or(false)) {
                self.enqueue(&chunk, now);
            }
        }
        if msg.flush.unwrap_or(false) {
            if let Some(chunk) = self.buffer.take_all() {
                self.enqueue(&chunk, now);
            }
        }
        Ok(())
    }

    /// Without a valid header key, the first message must bring one.
    fn authenticate(&mut self, msg: &ClientMsg) -> Result<(), Reject> {
        if self.hs.authed {
            return Ok(());
        }
        let bearer = msg.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
        let Some(key) = msg.key.as_deref().or(bearer) else {
            return Err(Reject::new("invalid_api_key", "Invalid API key", 1008));
        };
        self.stats.saw_key(key);
        if !self.stats.keys.contains(key) {
            return Err(Reject::new("invalid_api_key", "Invalid API key", 1008));
        }
        self.hs.authed = true;
        Ok(())
    }

    /// Queues a generation: first audio `first_audio_delay` after the trigger (or after audio
    /// already queued), then one piece per `piece_ms` of audio at `pace`.
    fn enqueue(&mut self, chunk: &str, now: Instant) {
        let chars: Vec<char> = chunk.chars().collect();
        let mut due = (now + self.sim.cfg.voicing.first_audio_delay).max(self.next_free);
        for piece in chars.chunks(self.chars_per_piece) {
            self.pieces.push_back(Piece { due, chars: piece.to_vec() });
            let audio_ms = piece.len() as f64 * self.ms_per_char as f64;
            due += Duration::from_secs_f64(audio_ms / 1000.0 / self.pace);
        }
        self.next_free = due;
    }

    /// One `audio` message. Sample boundaries are cumulative from the stream start, so the
    /// total length is exactly `chars × ms_per_char` however the pieces fall.
    fn render(&mut self, chars: &[char]) -> String {
        let rate = u64::from(self.hs.format.sample_rate());
        let ms = self.ms_per_char;
        self.samples.clear();
        let mut names = Vec::with_capacity(chars.len());
        let mut starts = Vec::with_capacity(chars.len());
        for (i, &c) in chars.iter().enumerate() {
            let g = self.voiced + i as u64;
            self.voice.render(c, (g + 1) * ms * rate / 1000, &mut self.samples);
            names.push(c.to_string());
            starts.push(g * ms);
        }
        self.voiced += chars.len() as u64;
        self.hs.format.encode(&self.samples, &mut self.bytes);
        let audio = base64::engine::general_purpose::STANDARD.encode(&self.bytes);
        let alignment = serde_json::json!({
            "chars": names,
            "charStartTimesMs": starts,
            "charDurationsMs": vec![ms; chars.len()],
        });
        serde_json::json!({"audio": audio, "alignment": alignment, "normalizedAlignment": alignment}).to_string()
    }
}
