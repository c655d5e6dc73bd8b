//! One simulated `ws3` connection: text segmented per the `segment` mode, paced base64 PCM
//! chunks split at odd byte boundaries (as Rime's are), per-segment word timestamps starting
//! at zero, `done` after each flush, `clear`, `eos` then close, and a 1011 fault.

use super::{Handshake, RimeSimConfig, Segment};
use crate::frame;
use crate::pacer::{self, Renderer, Schedule};
use base64::Engine as _;
use futures::SinkExt;
use serde::Deserialize;
use simkit::{Stats, Ws as SimWs};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
struct ClientMsg {
    text: Option<String>,
    operation: Option<String>,
    #[serde(rename = "contextId")]
    context_id: Option<String>,
}

enum Out {
    Audio {
        chars: Vec<char>,
        ctx: Option<String>,
        stamps: Option<String>,
    },
    /// End of a segment: whatever byte was held back goes out.
    EndSegment {
        ctx: Option<String>,
    },
    Json(String),
    Close,
}

struct Conn<'a> {
    cfg: &'a RimeSimConfig,
    stats: &'a Stats,
    segment: Segment,
    buffer: String,
    context: Option<String>,
    schedule: Schedule<Out>,
    renderer: Renderer,
    /// A byte held back so chunks end mid-sample.
    carry: Option<u8>,
    bytes: Vec<u8>,
    closing: bool,
}

pub(super) async fn run(mut ws: SimWs, hs: Handshake, cfg: &RimeSimConfig, stats: &Stats, stop: CancellationToken) {
    let mut c = Conn {
        cfg,
        stats,
        segment: hs.segment,
        buffer: String::new(),
        context: None,
        schedule: Schedule::new(cfg.voicing),
        renderer: Renderer::new(hs.sample_rate, cfg.voicing.ms_per_char),
        carry: None,
        bytes: Vec::new(),
        closing: false,
    };
    loop {
        let due = c.schedule.next_due();
        tokio::select! {
            () = stop.cancelled() => return frame::going_away(&mut ws).await,
                        text = frame::next_text(&mut ws), if !c.closing => {
                let Some(text) = text else { return };
                if let Some(err) = c.on_text(&text, Instant::now()) {
                    if ws.send(Message::text(err)).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let Some(out) = c.schedule.pop() else { continue };
                let msgs = match out {
                    Out::Close => {
                        simkit::close(&mut ws, 1000, "").await;
                        return;
                    }
                    Out::Json(j) => vec![j],
                    Out::Audio { chars, ctx, stamps } => {
                        let mut v = vec![c.chunk(&chars, ctx.as_deref())];
                        v.extend(stamps);
                        v
                    }
                    Out::EndSegment { ctx } => c.rest(ctx.as_deref()).into_iter().collect(),
                };
                for m in msgs {
                    if ws.send(Message::text(m)).await.is_err() {
                        return;
                    }
                }
                if c.cfg.voicing.fails_at(c.renderer.voiced()) {
                    let err = serde_json::json!({"type":"error","message":"internal server error"});
                    let _ = ws.send(Message::text(err.to_string())).await;
                    simkit::close(&mut ws, 1011, "internal server error").await;
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
    /// Handles one client message; `Some` is an error message to send back.
    fn on_text(&mut self, raw: &str, now: Instant) -> Option<String> {
        let Ok(msg) = serde_json::from_str::<ClientMsg>(raw) else {
            return Some(error("message is not valid JSON"));
        };
        if msg.context_id.is_some() {
            self.context = msg.context_id;
        }
        match (msg.text, msg.operation.as_deref()) {
            (Some(text), None) => {
                self.stats.received(text.chars().count());
                self.buffer.push_str(&text);
                match self.segment {
                    Segment::Immediate => self.generate_all(now),
                    Segment::BySentence => {
                        if let Some(cut) = pacer::sentence_cut(&self.buffer) {
                            let chunk: String = self.buffer.drain(..cut).collect();
                            self.generate(&chunk, now);
                        }
                    }
                    Segment::Never => {}
                }
            }
            (None, Some("flush")) => {
                self.generate_all(now);
                let done = serde_json::json!({"type": "done", "contextId": self.context});
                self.schedule.then(Out::Json(done.to_string()), now);
            }
            (None, Some("clear")) => {
                self.buffer.clear();
                self.schedule.retain(|o| matches!(o, Out::Close));
                self.carry = None;
            }
            (None, Some("eos")) => {
                self.generate_all(now);
                self.schedule.then(Out::Close, now);
                self.closing = true;
            }
            _ => return Some(error("expected {\"text\":…} or {\"operation\":\"flush\"|\"clear\"|\"eos\"}")),
        }
        None
    }

    fn generate_all(&mut self, now: Instant) {
        let chunk = std::mem::take(&mut self.buffer);
        self.generate(&chunk, now);
    }

    /// One segment: chunks, its timestamps (from zero) after the first, then the held byte.
    fn generate(&mut self, text: &str, now: Instant) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let ctx = self.context.clone();
        let ms = self.schedule.ms_per_char();
        let stamps =
            serde_json::json!({"type":"timestamps","contextId":ctx,"word_timestamps":pacer::word_times(text, 0, ms)});
        let mut stamps = Some(stamps.to_string());
        self.schedule.speak(text, now, |chars| Out::Audio { chars, ctx: ctx.clone(), stamps: stamps.take() });
        self.schedule.then(Out::EndSegment { ctx }, now);
    }

    /// A chunk whose bytes start with the held byte and hold back their own last one.
    fn chunk(&mut self, chars: &[char], ctx: Option<&str>) -> String {
        self.bytes.clear();
        self.bytes.extend(self.carry.take());
        let pcm = self.renderer.render(chars);
        self.bytes.extend_from_slice(pcm);
        self.carry = self.bytes.pop();
        let data = base64::engine::general_purpose::STANDARD.encode(&self.bytes);
        serde_json::json!({"type": "chunk", "data": data, "contextId": ctx}).to_string()
    }

    fn rest(&mut self, ctx: Option<&str>) -> Option<String> {
        let b = self.carry.take()?;
        let data = base64::engine::general_purpose::STANDARD.encode([b]);
        Some(serde_json::json!({"type": "chunk", "data": data, "contextId": ctx}).to_string())
    }
}
