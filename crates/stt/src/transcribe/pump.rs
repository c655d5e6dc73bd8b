//! The one task that owns a Transcribe socket: `AudioEvent`s out, `TranscriptEvent`s in, and
//! exactly one locally counted usage event at the end (Transcribe reports no duration).

use super::wire::{self, AudioEncoder};
use crate::wspump::{pcm_ms, Ws};
use crate::{SttError, SttEvent, SttInput};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode, Message};

pub(super) struct Opts {
    pub sample_rate: u32,
    /// Send 20 ms of silence after this long without audio: Transcribe has no keep-alive
    /// message and ends a stream that gets no audio for 15 s.
    pub keepalive_after: Duration,
    /// After the empty `AudioEvent`, how long to wait for the last results and the close.
    pub close_wait: Duration,
}

enum End {
    Normal,
    Failed(SttError),
    ConsumerGone,
}

pub(super) async fn run(mut ws: Ws, mut input: mpsc::Receiver<SttInput>, events: mpsc::Sender<SttEvent>, opts: Opts) {
    let mut audio_bytes = 0u64;
    let end = drive(&mut ws, &mut input, &events, &opts, &mut audio_bytes).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    if let End::ConsumerGone = end {
        return;
    }
    if let End::Failed(e) = end {
        tracing::warn!(code = e.code(), error = %e, "transcribe stream failed");
        if events.send(SttEvent::Error(e)).await.is_err() {
            return;
        }
    }
    // Billed per second of audio streamed (15 s minimum, applied by the pricing side).
    let audio_ms = pcm_ms(audio_bytes, opts.sample_rate);
    let _ = events.send(SttEvent::Usage { audio_ms, estimated: true }).await;
}

async fn drive(
    ws: &mut Ws,
    input: &mut mpsc::Receiver<SttInput>,
    events: &mpsc::Sender<SttEvent>,
    opts: &Opts,
    audio_bytes: &mut u64,
) -> End {
    let mut enc = AudioEncoder::new();
    // 20 ms of silence, sent when the caller goes quiet on the wire.
    let silence = vec![0u8; media::samples_per_20ms(opts.sample_rate.max(50)) * 2];
    let mut keepalive = tokio::time::interval(Duration::from_secs(1).min(opts.keepalive_after));
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_sent = Instant::now();
    let close_deadline = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(close_deadline);
    let mut closing = false;
    let mut out = Vec::with_capacity(4);
    loop {
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                None if closing => return End::Normal,
                None => return End::Failed(lost()),
                Some(Err(tungstenite::Error::ConnectionClosed)) if closing => return End::Normal,
                Some(Err(e)) => return End::Failed(SttError::Protocol(e.to_string())),
                Some(Ok(Message::Binary(frame))) => {
                    let res = wire::decode(&frame, &mut out);
                    for ev in out.drain(..) {
                        if events.send(ev).await.is_err() {
                            return End::ConsumerGone;
                        }
                    }
                    if let Err(e) = res {
                        return End::Failed(e);
                    }
                }
                Some(Ok(Message::Close(frame))) => return closed(frame, closing),
                Some(Ok(_)) => {}
            },
            inp = input.recv(), if !closing => {
                let frame = match inp {
                    Some(SttInput::Audio(pcm)) if pcm.is_empty() => continue,
                    Some(SttInput::Audio(pcm)) => {
                        *audio_bytes += pcm.len() as u64;
                        last_sent = Instant::now();
                        enc.encode(&pcm)
                    }
                    Some(SttInput::KeepAlive) => {
                        *audio_bytes += silence.len() as u64;
                        last_sent = Instant::now();
                        enc.encode(&silence)
                    }
                    // Transcribe has no flush: its own endpointing closes segments.
                    Some(SttInput::Finalize) => continue,
                    Some(SttInput::Close) | None => {
                        closing = true;
                        close_deadline.as_mut().reset(Instant::now() + opts.close_wait);
                        enc.encode(&[])
                    }
                };
                let sent = match frame {
                    Ok(f) => ws.send(Message::Binary(f)).await,
                    Err(e) => return End::Failed(e),
                };
                if let Err(e) = sent {
                    return after_send_error(ws, e, closing, &mut out, events).await;
                }
            },
            _ = keepalive.tick(), if !closing => {
                if last_sent.elapsed() >= opts.keepalive_after {
                    last_sent = Instant::now();
                    *audio_bytes += silence.len() as u64;
                    let sent = match enc.encode(&silence) {
                        Ok(f) => ws.send(Message::Binary(f)).await,
                        Err(e) => return End::Failed(e),
                    };
                    if let Err(e) = sent {
                        return after_send_error(ws, e, closing, &mut out, events).await;
                    }
                }
            },
            () = &mut close_deadline, if closing => {
                tracing::debug!("transcribe: no close after end of audio; giving up waiting");
                return End::Normal;
            },
        }
    }
}

fn lost() -> SttError {
    SttError::Closed { code: 1006, reason: "connection lost".into() }
}

fn closed(frame: Option<tungstenite::protocol::CloseFrame>, closing: bool) -> End {
    match frame {
        None if closing => End::Normal,
        None => End::Failed(lost()),
        Some(f) if f.code == CloseCode::Normal && closing => End::Normal,
        Some(f) if f.code == CloseCode::Normal => {
            End::Failed(SttError::Closed { code: 1000, reason: "closed before the stream ended".into() })
        }
        Some(f) => End::Failed(SttError::Closed { code: f.code.into(), reason: f.reason.to_string() }),
    }
}

/// A write failed, usually because Transcribe ended the stream first: its exception frame (or
/// close frame) explains why better than the write error.
async fn after_send_error(
    ws: &mut Ws,
    e: tungstenite::Error,
    closing: bool,
    out: &mut Vec<SttEvent>,
    events: &mpsc::Sender<SttEvent>,
) -> End {
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Ok(Message::Binary(frame)) => {
                let res = wire::decode(&frame, out);
                for ev in out.drain(..) {
                    if events.send(ev).await.is_err() {
                        return End::ConsumerGone;
                    }
                }
                if let Err(e) = res {
                    return End::Failed(e);
                }
            }
            Ok(Message::Close(frame)) => return closed(frame, closing),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    End::Failed(match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => lost(),
        other => SttError::Protocol(other.to_string()),
    })
}
