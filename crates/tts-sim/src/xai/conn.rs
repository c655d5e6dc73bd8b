//! One simulated xAI TTS connection: `text.delta` voiced word by word as it arrives,
//! `text.done` finishing the utterance with `audio.done`, `text.clear` answered by
//! `audio.clear`. Utterances are voiced one after another; timings restart per utterance.

use super::{Handshake, XaiSimConfig};
use crate::frame;
use crate::speech::{take_complete_words, Speaker};
use base64::Engine as _;
use futures::SinkExt;
use serde::Deserialize;
use simkit::{Stats, Ws};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
struct ClientMsg {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    delta: Option<String>,
}

struct Conn<'a> {
    stats: &'a Stats,
    with_timestamps: bool,
    speaker: Speaker,
    /// Text received but not yet handed to the speaker.
    buf: String,
    /// `text.done`s whose `audio.done` has not been sent.
    dones: u32,
    /// Characters voiced on this connection: the fault-injection counter.
    voiced_total: u64,
}

pub(super) async fn run(mut ws: Ws, hs: Handshake, cfg: &XaiSimConfig, stats: &Stats, stop: CancellationToken) {
    let mut c = Conn {
        stats,
        with_timestamps: hs.with_timestamps,
        speaker: Speaker::new(&cfg.voicing, hs.sample_rate),
        buf: String::new(),
        dones: 0,
        voiced_total: 0,
    };
    loop {
        if c.dones > 0 && c.speaker.is_idle() {
            if ws.send(Message::text(r#"{"type":"audio.done"}"#)).await.is_err() {
                return;
            }
            c.finish_utterance();
            continue;
        }
        let due = c.speaker.due();
        tokio::select! {
            () = stop.cancelled() => return frame::going_away(&mut ws).await,
                        text = frame::next_text(&mut ws) => {
                let Some(text) = text else { return };
                if let Some(reply) = c.on_text(&text) {
                    if ws.send(Message::text(reply)).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let Some(json) = c.render() else { continue };
                if ws.send(Message::text(json)).await.is_err() {
                    return;
                }
                if cfg.voicing.fails_at(c.voiced_total) {
                    let _ = ws.send(Message::text(r#"{"type":"error","message":"Internal error: speech synthesis failed"}"#)).await;
                    simkit::close(&mut ws, 1011, "internal error").await;
                    return;
                }
            }
        }
    }
}

fn error(message: &str) -> String {
    serde_json::json!({"type": "error", "message": message}).to_string()
}

impl Conn<'_> {
    /// Handles one client message; returns an immediate reply, if any.
    fn on_text(&mut self, raw: &str) -> Option<String> {
        let Ok(msg) = serde_json::from_str::<ClientMsg>(raw) else {
            return Some(error("Invalid message: expected a JSON object with a type"));
        };
        let now = Instant::now();
        match msg.kind.as_str() {
            "text.delta" => {
                let Some(delta) = msg.delta else { return Some(error("text.delta requires delta")) };
                self.stats.received(delta.chars().count());
                self.buf.push_str(&delta);
                if self.dones == 0 {
                    if let Some(words) = take_complete_words(&mut self.buf) {
                        self.speaker.say(&words, now);
                    }
                }
                None
            }
            "text.done" => {
                if self.dones == 0 {
                    self.say_rest(now);
                }
                self.dones += 1;
                None
            }
            "text.clear" => {
                self.buf.clear();
                self.speaker.restart();
                self.dones = 0;
                Some(r#"{"type":"audio.clear"}"#.to_string())
            }
            other => Some(error(&format!("Unknown message type: {other}"))),
        }
    }

    fn say_rest(&mut self, now: Instant) {
        let rest = std::mem::take(&mut self.buf);
        if !rest.trim().is_empty() {
            self.speaker.say(rest.trim_end(), now);
        }
    }

    /// After `audio.done`: the next utterance starts its clock at zero with what is buffered.
    fn finish_utterance(&mut self) {
        self.dones -= 1;
        self.speaker.restart();
        let now = Instant::now();
        if self.dones > 0 {
            self.say_rest(now);
        } else if let Some(words) = take_complete_words(&mut self.buf) {
            self.speaker.say(&words, now);
        }
    }

    /// One `audio.delta` with character timings in seconds from the utterance start.
    fn render(&mut self) -> Option<String> {
        let with_timestamps = self.with_timestamps;
        let p = self.speaker.next()?;
        let audio = base64::engine::general_purpose::STANDARD.encode(p.pcm);
        let n = p.chars.len() as u64;
        let mut msg = serde_json::json!({"type": "audio.delta", "delta": audio});
        if with_timestamps {
            let secs = |i: u64| (i * p.ms_per_char) as f64 / 1000.0;
            let chars: Vec<String> = p.chars.iter().map(char::to_string).collect();
            let times: Vec<[f64; 2]> = (p.first_index..p.first_index + n).map(|i| [secs(i), secs(i + 1)]).collect();
            msg["audio_timestamps"] = serde_json::json!({"graph_chars": chars, "graph_times": times});
        }
        self.voiced_total += n;
        Some(msg.to_string())
    }
}
