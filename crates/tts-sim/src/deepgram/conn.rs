//! One simulated `/v1/speak` connection: `Metadata` on open, `Speak` text buffered until
//! `Flush`, paced binary audio, `Flushed`/`Cleared` with sequence ids, the flush rate limit,
//! `Close` after pending audio, and a 1011 fault.

use super::{DeepgramTtsSimConfig, Handshake};
use crate::frame;
use crate::pacer::{Renderer, Schedule};
use bytes::Bytes;
use futures::SinkExt;
use serde::Deserialize;
use simkit::{Stats, Ws as SimWs};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
#[serde(tag = "type")]
enum ClientMsg {
    Speak { text: String },
    Flush,
    Clear,
    Close,
}

enum Out {
    Audio(Vec<char>),
    Json(String),
    Close,
}

pub(super) async fn run(
    mut ws: SimWs,
    hs: Handshake,
    cfg: &DeepgramTtsSimConfig,
    stats: &Stats,
    stop: CancellationToken,
) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let meta = serde_json::json!({"type":"Metadata","request_id":request_id,"model_name":hs.model,
        "model_version":"2025-04-07.0","model_uuid":uuid::Uuid::new_v4().to_string()});
    if ws.send(Message::text(meta.to_string())).await.is_err() {
        return;
    }
    let mut renderer = Renderer::new(hs.sample_rate, cfg.voicing.ms_per_char);
    let mut schedule: Schedule<Out> = Schedule::new(cfg.voicing);
    let mut buffer = String::new();
    let mut sequence: u64 = 0;
    let mut flushes: VecDeque<Instant> = VecDeque::new();
    let mut closing = false;
    loop {
        if closing && schedule.is_empty() {
            simkit::close(&mut ws, 1000, "").await;
            return;
        }
        let due = schedule.next_due();
        tokio::select! {
            () = stop.cancelled() => return frame::going_away(&mut ws).await,
                        text = frame::next_text(&mut ws), if !closing => {
                let Some(text) = text else { return };
                let now = Instant::now();
                let reply = match serde_json::from_str::<ClientMsg>(&text) {
                    Ok(ClientMsg::Speak { text }) => {
                        stats.received(text.chars().count());
                        buffer.push_str(&text);
                        None
                    }
                    Ok(ClientMsg::Flush) => {
                        while flushes.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
                            flushes.pop_front();
                        }
                        if flushes.len() >= cfg.flushes_per_minute {
                            Some(serde_json::json!({"type":"Warning","code":"FLUSH_LIMIT_EXCEEDED",
                                "description":"Flush ignored: at most 20 Flush messages per 60 seconds."}).to_string())
                        } else {
                            flushes.push_back(now);
                            let spoken = std::mem::take(&mut buffer);
                            if !spoken.is_empty() {
                                schedule.speak(&spoken, now, Out::Audio);
                            }
                            let flushed = serde_json::json!({"type":"Flushed","sequence_id":sequence});
                            sequence += 1;
                            schedule.then(Out::Json(flushed.to_string()), now);
                            None
                        }
                    }
                    Ok(ClientMsg::Clear) => {
                        buffer.clear();
                        schedule.retain(|o| matches!(o, Out::Close));
                        let cleared = serde_json::json!({"type":"Cleared","sequence_id":sequence});
                        sequence += 1;
                        Some(cleared.to_string())
                    }
                    Ok(ClientMsg::Close) => {
                        closing = true;
                        schedule.then(Out::Close, now);
                        None
                    }
                    Err(_) => Some(serde_json::json!({"type":"Warning","code":"UNKNOWN_MESSAGE",
                        "description":"Expected a Speak, Flush, Clear or Close message."}).to_string()),
                };
                if let Some(r) = reply {
                    if ws.send(Message::text(r)).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let sent = match schedule.pop() {
                    Some(Out::Audio(chars)) => {
                        let pcm = Bytes::copy_from_slice(renderer.render(&chars));
                        ws.send(Message::binary(pcm)).await
                    }
                    Some(Out::Json(j)) => ws.send(Message::text(j)).await,
                    Some(Out::Close) | None => continue,
                };
                if sent.is_err() {
                    return;
                }
                if cfg.voicing.fails_at(renderer.voiced()) {
                    simkit::close(&mut ws, 1011, "NET-0001: internal synthesis failure").await;
                    return;
                }
            }
        }
    }
}
