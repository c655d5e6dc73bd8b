//! One simulated xAI TTS connection: `text.delta` voiced word by word as it arrives,
//! `text.done` finishing the utterance with `audio.done`, `text.clear` answered by
//! `audio.clear`. Utterances are voiced one after another; timings restart per utterance.

use super::{Handshake, Shared};
use crate::sim::speech::{take_complete_words, Pacing, Speaker};
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<TcpStream>;

#[derive(Deserialize)]
struct ClientMsg {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    delta: Option<String>,
}

struct Conn<'a> {
    shared: &'a Shared,
    with_timestamps: bool,
    speaker: Speaker,
    /// Text received but not yet handed to the speaker.
    buf: String,
    /// `text.done`s whose `audio.done` has not been sent.
    dones: u32,
    /// Characters voiced on this connection: the fault-injection counter.
    voiced_total: u64,
}

pub(super) async fn run(mut ws: Ws, hs: Handshake, shared: &Shared, stop: CancellationToken) {
    let cfg = &shared.cfg;
    let pacing = Pacing {
        sample_rate: hs.sample_rate,
        ms_per_char: cfg.ms_per_char,
        piece_ms: cfg.piece_ms,
        pace: cfg.pace,
        first_audio_delay: cfg.first_audio_delay,
    };
    let mut c = Conn {
        shared,
        with_timestamps: hs.with_timestamps,
        speaker: Speaker::new(pacing),
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
            () = stop.cancelled() => {
                close(&mut ws, 1001, "simulator stopped").await;
                return;
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                };
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
                if shared.cfg.fail_after_chars.is_some_and(|limit| c.voiced_total >= limit) {
                    let _ = ws.send(Message::text(r#"{"type":"error","message":"Internal error: speech synthesis failed"}"#)).await;
                    close(&mut ws, 1011, "internal error").await;
                    return;
                }
            }
        }
    }
}

async fn close(ws: &mut Ws, code: u16, reason: &str) {
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
    if ws.close(Some(frame)).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async { while ws.next().await.is_some() {} }).await;
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
                self.shared.chars_received.fetch_add(delta.chars().count() as u64, Ordering::Relaxed);
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
