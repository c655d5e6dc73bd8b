//! One simulated synthesis connection: validate messages like the service, then answer each SSML
//! request in turn with turn.start, response, paced binary audio, audio.metadata (SessionEnd) and
//! turn.end.

use super::Azure;
use crate::voice::Voice;
use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use simkit::{Message, Stats, Ws};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tts::wire::azure as wire;
use usp::Headers;

/// Why the connection must close: code and reason, as the service sends them.
struct Violation(u16, &'static str);

/// Output format a request gets when no `synthesis.context` named one (the SDK always does).
const DEFAULT_RATE: u32 = 16000;

enum Item {
    /// A ready text frame.
    Text(String),
    /// Characters to voice into one binary audio frame.
    Audio(Vec<char>),
    /// `turn.end` of the open request; the next queued request starts after it.
    TurnEnd,
}

struct Turn {
    id: String,
    stream_id: String,
    rate: u64,
    voice: Voice,
    /// Characters voiced in this request: the sample clock.
    voiced: u64,
}

/// What the last `synthesis.context` asked for, by request id.
struct Context {
    id: String,
    rate: u32,
    session_end: bool,
}

struct Conn<'a> {
    sim: &'a Azure,
    stats: &'a Stats,
    context: Option<Context>,
    /// Requests received while another was being answered.
    pending: VecDeque<(String, String, u32, bool)>,
    turn: Option<Turn>,
    items: VecDeque<(Instant, Item)>,
    /// When the audio queued so far has been produced.
    next_free: Instant,
    voiced_total: u64,
    samples: Vec<i16>,
    frame: BytesMut,
}

pub(super) async fn run(mut ws: Ws, sim: &Azure, stats: &Stats, stop: CancellationToken) {
    let mut c = Conn {
        sim,
        stats,
        context: None,
        pending: VecDeque::new(),
        turn: None,
        items: VecDeque::new(),
        next_free: Instant::now(),
        voiced_total: 0,
        samples: Vec::new(),
        frame: BytesMut::new(),
    };
    loop {
        let due = c.items.front().map(|(d, _)| *d);
        let result = tokio::select! {
            () = stop.cancelled() => return,
            msg = ws.next() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(t))) => c.on_text(&t),
                Some(Ok(_)) => Ok(()),
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => Ok(()),
        };
        if let Err(Violation(code, reason)) = result {
            simkit::close(&mut ws, code, reason).await;
            return;
        }
        let now = Instant::now();
        while c.items.front().is_some_and(|(d, _)| *d <= now) {
            let Some((_, item)) = c.items.pop_front() else { break };
            let msg = match c.render(item) {
                Some(msg) => msg,
                None => continue,
            };
            if ws.send(msg).await.is_err() {
                return;
            }
            if sim.cfg.voicing.fails_at(c.voiced_total) {
                simkit::close(&mut ws, 1011, "Internal service error.").await;
                return;
            }
        }
    }
}

/// `Path` and a well-formed `X-RequestId`, or the 1002 close the service answers without them.
fn required<'a>(h: &Headers<'a>) -> Result<(&'a str, &'a str), Violation> {
    h.required().map_err(|reason| Violation(1002, reason))
}

impl Conn<'_> {
    fn on_text(&mut self, frame: &str) -> Result<(), Violation> {
        let (h, body) = usp::parse_text(frame).map_err(|e| Violation(1007, e.reason()))?;
        let (path, id) = required(&h)?;
        match path.to_ascii_lowercase().as_str() {
            "speech.config" => {
                serde_json::from_str::<serde_json::Value>(body)
                    .map_err(|_| Violation(1007, "Invalid JSON payload."))?;
            }
            "synthesis.context" => {
                let ctx: wire::SynthesisContext =
                    serde_json::from_str(body).map_err(|_| Violation(1007, "Invalid synthesis.context payload."))?;
                let audio = ctx.synthesis.audio;
                let rate = wire::output_rate(&audio.output_format).ok_or(Violation(
                    1007,
                    "Unsupported output format: the simulator produces raw-*-16bit-mono-pcm.",
                ))?;
                let session_end = audio.metadata_options.session_end_enabled;
                self.context = Some(Context { id: id.to_string(), rate, session_end });
            }
            "ssml" => {
                let (voice, text) =
                    wire::parse_ssml(body).ok_or(Violation(1007, "Invalid SSML: no <speak> root or no voice name."))?;
                let (rate, session_end) = match &self.context {
                    Some(c) if c.id.eq_ignore_ascii_case(id) => (c.rate, c.session_end),
                    _ => (DEFAULT_RATE, false),
                };
                if let Ok(mut voices) = self.sim.voices.lock() {
                    voices.push(voice);
                }
                self.sim.requests.fetch_add(1, Ordering::Relaxed);
                self.stats.received(text.chars().count());
                self.pending.push_back((id.to_string(), text, rate, session_end));
                if self.turn.is_none() {
                    self.start_next();
                }
            }
            "synthesis.control" => {
                let stop = serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .is_some_and(|v| v.get("action").and_then(|a| a.as_str()) == Some("stop"));
                if stop && self.turn.as_ref().is_some_and(|t| t.id.eq_ignore_ascii_case(id)) {
                    self.items.retain(|(_, item)| !matches!(item, Item::Audio(_)));
                    let now = Instant::now();
                    self.next_free = now;
                    self.items.iter_mut().for_each(|(due, _)| *due = now);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Queue the answer to the next pending request, paced like a service faster than real time.
    fn start_next(&mut self) {
        let Some((id, text, rate, session_end)) = self.pending.pop_front() else { return };
        let cfg = &self.sim.cfg;
        let now = Instant::now();
        let stream_id = usp::new_id().to_ascii_uppercase();
        let tag = usp::new_id().to_ascii_uppercase();
        self.push(now, Item::Text(frame("turn.start", &id, &json!({"context": {"serviceTag": tag}}).to_string())));
        let response = json!({"context": {"serviceTag": tag}, "audio": {"type": "inline", "streamId": stream_id}});
        self.push(now, Item::Text(frame("response", &id, &response.to_string())));
        let v = &cfg.voicing;
        let ms_per_char = u64::from(v.ms_per_char.max(1));
        let (per_piece, pace) = (v.chars_per_piece(), v.pace());
        let chars: Vec<char> = text.chars().collect();
        let mut due = (now + v.first_audio_delay).max(self.next_free);
        for piece in chars.chunks(per_piece) {
            self.push(due, Item::Audio(piece.to_vec()));
            due += Duration::from_secs_f64(piece.len() as f64 * ms_per_char as f64 / 1000.0 / pace);
        }
        self.next_free = due;
        if session_end {
            let ticks = chars.len() as u64 * ms_per_char * 10_000;
            let meta = json!({"Metadata": [{"Type": "SessionEnd", "Data": {"Offset": ticks}}]});
            self.push(due, Item::Text(frame("audio.metadata", &id, &meta.to_string())));
        }
        self.push(due, Item::TurnEnd);
        self.turn = Some(Turn { id, stream_id, rate: u64::from(rate), voice: Voice::new(rate), voiced: 0 });
    }

    fn push(&mut self, due: Instant, item: Item) {
        let due = self.items.back().map_or(due, |(last, _)| (*last).max(due));
        self.items.push_back((due, item));
    }

    /// The frame for an item that is due; voicing happens here so samples follow send order.
    fn render(&mut self, item: Item) -> Option<Message> {
        match item {
            Item::Text(t) => Some(Message::text(t)),
            Item::Audio(chars) => {
                let turn = self.turn.as_mut()?;
                let ms = u64::from(self.sim.cfg.voicing.ms_per_char.max(1));
                self.samples.clear();
                for &c in &chars {
                    turn.voiced += 1;
                    turn.voice.render(c, turn.voiced * ms * turn.rate / 1000, &mut self.samples);
                }
                self.voiced_total += chars.len() as u64;
                self.frame.reserve(200 + self.samples.len() * 2);
                // Header first, then the samples appended as the body.
                usp::write_binary(&mut self.frame, "audio", &turn.id, None, Some(&turn.stream_id), &[]);
                self.samples.iter().for_each(|&s| self.frame.put_i16_le(s));
                Some(Message::Binary(self.frame.split().freeze()))
            }
            Item::TurnEnd => {
                let turn = self.turn.take()?;
                let msg = frame("turn.end", &turn.id, "");
                self.start_next();
                Some(Message::text(msg))
            }
        }
    }
}

/// A service text message; `turn.end` has no body and no content type.
fn frame(path: &str, id: &str, body: &str) -> String {
    let mut s = String::new();
    usp::write_text(&mut s, path, id, (!body.is_empty()).then_some("application/json; charset=utf-8"), body);
    s
}
