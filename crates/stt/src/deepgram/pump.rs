//! The one task that owns a Deepgram socket: audio and control out, results in, usage at the end.

use super::wire;
use crate::{SttError, SttEvent, SttInput};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(super) struct Opts {
    pub sample_rate: u32,
    /// Send `KeepAlive` after this long without audio.
    pub keepalive_after: Duration,
    /// After `CloseStream`, how long to wait for `Metadata` and the close frame.
    pub close_wait: Duration,
}

/// How the socket loop ended.
enum End {
    /// Closed normally (or the close wait ran out): report usage and stop.
    Normal,
    Failed(SttError),
    /// The event receiver is gone: nobody to tell anything.
    ConsumerGone,
}

struct Counters {
    audio_bytes: u64,
    /// Provider `Metadata` was forwarded, so no local estimate is needed.
    usage_reported: bool,
}

pub(super) async fn run(mut ws: Ws, mut input: mpsc::Receiver<SttInput>, events: mpsc::Sender<SttEvent>, opts: Opts) {
    let mut n = Counters { audio_bytes: 0, usage_reported: false };
    let end = drive(&mut ws, &mut input, &events, &opts, &mut n).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    if let End::ConsumerGone = end {
        return;
    }
    if let End::Failed(e) = end {
        tracing::warn!(code = e.code(), error = %e, "deepgram stream failed");
        if events.send(SttEvent::Error(e)).await.is_err() {
            return;
        }
    }
    if !n.usage_reported {
        let audio_ms = n.audio_bytes * 1000 / (u64::from(opts.sample_rate.max(1)) * 2);
        let _ = events.send(SttEvent::Usage { audio_ms, estimated: true }).await;
    }
}

async fn drive(
    ws: &mut Ws,
    input: &mut mpsc::Receiver<SttInput>,
    events: &mpsc::Sender<SttEvent>,
    opts: &Opts,
    n: &mut Counters,
) -> End {
    let mut keepalive = tokio::time::interval(Duration::from_secs(1).min(opts.keepalive_after));
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_sent = Instant::now();
    let close_deadline = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(close_deadline);
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                None if closing => return End::Normal,
                None => return End::Failed(lost()),
                Some(Err(tungstenite::Error::ConnectionClosed)) if closing => return End::Normal,
                Some(Err(e)) => return End::Failed(SttError::Protocol(e.to_string())),
                Some(Ok(Message::Text(text))) => match wire::decode(&text) {
                    Ok(None) => {}
                    Ok(Some(ev)) => {
                        n.usage_reported |= matches!(ev, SttEvent::Usage { .. });
                        if events.send(ev).await.is_err() {
                            return End::ConsumerGone;
                        }
                    }
                    Err(e) => return End::Failed(e),
                },
                Some(Ok(Message::Close(frame))) => return closed(frame),
                Some(Ok(_)) => {}
            },
            inp = input.recv(), if !closing => {
                let sent = match inp {
                    Some(SttInput::Audio(pcm)) => {
                        n.audio_bytes += pcm.len() as u64;
                        last_sent = Instant::now();
                        ws.send(Message::Binary(pcm)).await
                    }
                    Some(SttInput::KeepAlive) => {
                        last_sent = Instant::now();
                        ws.send(Message::Text(wire::KEEP_ALIVE)).await
                    }
                    Some(SttInput::Finalize) => ws.send(Message::Text(wire::FINALIZE)).await,
                    Some(SttInput::Close) | None => {
                        closing = true;
                        close_deadline.as_mut().reset(Instant::now() + opts.close_wait);
                        ws.send(Message::Text(wire::CLOSE_STREAM)).await
                    }
                };
                if let Err(e) = sent {
                    return after_send_error(ws, e).await;
                }
            },
            _ = keepalive.tick(), if !closing => {
                if last_sent.elapsed() >= opts.keepalive_after {
                    last_sent = Instant::now();
                    if let Err(e) = ws.send(Message::Text(wire::KEEP_ALIVE)).await {
                        return after_send_error(ws, e).await;
                    }
                }
            },
            () = &mut close_deadline, if closing => {
                tracing::debug!("deepgram: no close after CloseStream; giving up waiting");
                return End::Normal;
            },
        }
    }
}

fn lost() -> SttError {
    SttError::Closed { code: 1006, reason: "connection lost".into() }
}

fn closed(frame: Option<tungstenite::protocol::CloseFrame>) -> End {
    match frame {
        None => End::Normal,
        Some(f) if f.code == CloseCode::Normal => End::Normal,
        Some(f) => End::Failed(SttError::Closed { code: f.code.into(), reason: f.reason.to_string() }),
    }
}

/// A write failed, usually because the provider closed first: prefer its close frame's reason.
async fn after_send_error(ws: &mut Ws, e: tungstenite::Error) -> End {
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Ok(Message::Close(frame)) => return closed(frame),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    End::Failed(match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => lost(),
        other => SttError::Protocol(other.to_string()),
    })
}
