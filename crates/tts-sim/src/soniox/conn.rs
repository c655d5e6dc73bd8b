//! One simulated Soniox TTS socket: per-stream config (the key is checked here), text voiced
//! word by word as it arrives, `text_end` → last audio with `audio_end` → `terminated`,
//! `cancel` → `terminated` only, per-stream errors that leave the socket open.

use super::Soniox;
use crate::frame;
use crate::speech::{take_complete_words, Speaker};
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

const MAX_STREAMS: usize = 5;
const RATES: [u32; 5] = [8000, 16000, 24000, 44100, 48000];

/// Every client message shape in one; which fields are present says which it is.
/// Not `Debug`: it may carry a key.
#[derive(Deserialize)]
struct ClientMsg {
    api_key: Option<String>,
    stream_id: Option<String>,
    model: Option<String>,
    language: Option<String>,
    voice: Option<String>,
    audio_format: Option<String>,
    sample_rate: Option<u32>,
    #[serde(default)]
    return_timestamps: bool,
    text: Option<String>,
    #[serde(default)]
    text_end: bool,
    #[serde(default)]
    cancel: bool,
    #[serde(default)]
    keep_alive: bool,
}

struct Stream {
    speaker: Speaker,
    buf: String,
    timestamps: bool,
    /// `text_end` received: the rest is queued and `terminated` follows the last audio.
    ended: bool,
    audio_end_sent: bool,
}

struct Conn<'a> {
    sim: &'a Soniox,
    stats: &'a Stats,
    streams: HashMap<String, Stream>,
}

fn error(stream_id: Option<&str>, code: u16, message: &str) -> String {
    match stream_id {
        Some(id) => json!({"stream_id": id, "error_code": code, "error_message": message}),
        None => json!({"error_code": code, "error_message": message}),
    }
    .to_string()
}

fn terminated(stream_id: &str) -> String {
    json!({"terminated": true, "stream_id": stream_id}).to_string()
}

pub(super) async fn run(mut ws: Ws, sim: &Soniox, stats: &Stats, stop: CancellationToken) {
    let mut c = Conn { sim, stats, streams: HashMap::new() };
    let mut last_activity = Instant::now();
    let mut out = Vec::new();
    loop {
        out.clear();
        c.finish_ended(&mut out);
        for m in out.drain(..) {
            if ws.send(Message::text(m)).await.is_err() {
                return;
            }
        }
        let next = c.streams.iter().filter_map(|(id, s)| s.speaker.due().map(|d| (d, id.clone()))).min();
        let generating = !c.streams.is_empty();
        tokio::select! {
            () = stop.cancelled() => return frame::going_away(&mut ws).await,
                        text = frame::next_text(&mut ws) => {
                let Some(text) = text else { return };
                last_activity = Instant::now();
                c.on_text(&text, &mut out);
                for m in out.drain(..) {
                    if ws.send(Message::text(m)).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(next.as_ref().map_or_else(Instant::now, |(d, _)| *d)), if next.is_some() => {
                let Some((_, id)) = next else { continue };
                c.render(&id, &mut out);
                for m in out.drain(..) {
                    if ws.send(Message::text(m)).await.is_err() {
                        return;
                    }
                }
                last_activity = Instant::now();
            }
            () = tokio::time::sleep_until(last_activity + sim.cfg.idle_timeout), if !generating => {
                simkit::close(&mut ws, 1008, "idle timeout").await;
                return;
            }
        }
    }
}

impl Conn<'_> {
    fn on_text(&mut self, raw: &str, out: &mut Vec<String>) {
        let Ok(msg) = serde_json::from_str::<ClientMsg>(raw) else {
            out.push(error(None, 400, "Invalid message: expected a JSON object."));
            return;
        };
        if msg.keep_alive {
            return;
        }
        let Some(id) = msg.stream_id.clone().filter(|id| !id.is_empty()) else {
            out.push(error(None, 400, "Missing required field: stream_id"));
            return;
        };
        if msg.api_key.is_some() {
            return self.configure(id, msg, out);
        }
        if msg.cancel {
            match self.streams.remove(&id) {
                Some(_) => out.push(terminated(&id)),
                None => out.push(error(Some(&id), 400, "Stream not found.")),
            }
            return;
        }
        let Some(text) = msg.text else {
            out.push(error(Some(&id), 400, "Unknown message: expected config, text, cancel or keep_alive."));
            return;
        };
        let Some(stream) = self.streams.get_mut(&id).filter(|s| !s.ended) else {
            out.push(error(Some(&id), 400, "Stream not found."));
            out.push(terminated(&id));
            return;
        };
        self.stats.received(text.chars().count());
        stream.buf.push_str(&text);
        let now = Instant::now();
        if msg.text_end {
            stream.ended = true;
            let rest = std::mem::take(&mut stream.buf);
            if !rest.trim().is_empty() {
                stream.speaker.say(rest.trim_end(), now);
            }
        } else if let Some(words) = take_complete_words(&mut stream.buf) {
            stream.speaker.say(&words, now);
        }
    }

    /// A config message: checks it like the provider, one error + `terminated` per failure.
    fn configure(&mut self, id: String, msg: ClientMsg, out: &mut Vec<String>) {
        let fail = |out: &mut Vec<String>, code: u16, message: &str| {
            out.push(error(Some(&id), code, message));
            out.push(terminated(&id));
        };
        if self.streams.contains_key(&id) {
            // The live stream is untouched; only the duplicate is refused.
            out.push(error(Some(&id), 400, "Stream with this stream_id is already active."));
            return;
        }
        if !self.stats.check_key(msg.api_key.as_deref().unwrap_or_default()) {
            return fail(out, 401, "Invalid API key.");
        }
        for (field, value) in [
            ("model", &msg.model),
            ("language", &msg.language),
            ("voice", &msg.voice),
            ("audio_format", &msg.audio_format),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                return fail(out, 400, &format!("Missing required field: {field}"));
            }
        }
        if !msg.model.as_deref().unwrap_or_default().starts_with("tts-rt-") {
            return fail(out, 400, "Invalid model.");
        }
        if msg.audio_format.as_deref() != Some("pcm_s16le") {
            return fail(out, 400, "The simulator produces audio_format pcm_s16le only.");
        }
        let Some(rate) = msg.sample_rate.filter(|r| RATES.contains(r)) else {
            return fail(out, 400, "Invalid sample_rate for pcm_s16le.");
        };
        if self.streams.len() >= MAX_STREAMS {
            return fail(out, 400, "Too many active streams on this connection (max 5).");
        }
        let cfg = &self.sim.cfg;
        self.sim.streams_opened.fetch_add(1, Ordering::Relaxed);
        let stream = Stream {
            speaker: Speaker::new(&cfg.voicing, rate),
            buf: String::new(),
            timestamps: msg.return_timestamps,
            ended: false,
            audio_end_sent: false,
        };
        self.streams.insert(id, stream);
    }

    /// Streams whose `text_end` came and whose audio is all out: `audio_end` (if the last
    /// audio did not carry it) then `terminated`.
    fn finish_ended(&mut self, out: &mut Vec<String>) {
        self.streams.retain(|id, s| {
            if !(s.ended && s.speaker.is_idle()) {
                return true;
            }
            if !s.audio_end_sent {
                out.push(json!({"audio": "", "audio_end": true, "stream_id": id}).to_string());
            }
            out.push(terminated(id));
            false
        });
    }

    fn render(&mut self, id: &str, out: &mut Vec<String>) {
        let limit = self.sim.cfg.voicing.fail_after_chars;
        let Some(s) = self.streams.get_mut(id) else { return };
        let ended = s.ended;
        let timestamps = s.timestamps;
        let Some(p) = s.speaker.next() else { return };
        let audio_end = ended && p.last;
        let mut msg = json!({
            "audio": base64::engine::general_purpose::STANDARD.encode(p.pcm),
            "audio_end": audio_end,
            "stream_id": id,
        });
        if timestamps {
            let secs = |i: u64| (i * p.ms_per_char) as f64 / 1000.0;
            let n = p.chars.len() as u64;
            msg["timestamps"] = json!({
                "characters": p.chars.iter().map(char::to_string).collect::<Vec<_>>(),
                "character_start_times_seconds": (p.first_index..p.first_index + n).map(secs).collect::<Vec<_>>(),
                "character_end_times_seconds": (p.first_index + 1..=p.first_index + n).map(secs).collect::<Vec<_>>(),
            });
        }
        out.push(msg.to_string());
        s.audio_end_sent = audio_end;
        if limit.is_some_and(|l| s.speaker.voiced() >= l) {
            self.streams.remove(id);
            out.push(error(Some(id), 500, "Internal error. Please restart the stream."));
            out.push(terminated(id));
        }
    }
}
