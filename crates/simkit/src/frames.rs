//! The websocket frame loop every streaming simulator runs: read a client frame, let the
//! protocol react, send its replies no earlier than their due time, close idle streams, and
//! close the way the provider does. A protocol only says what each frame means.

use futures::{Sink, SinkExt, Stream, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

/// How long a close waits for the client's answering close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A timer with nothing to wait for is armed this far out.
const FAR: Duration = Duration::from_secs(86_400);

/// Server messages waiting for their due time. Due times never decrease, so order is kept.
#[derive(Default)]
pub struct Outbox {
    queue: VecDeque<(Instant, Message)>,
    last_due: Option<Instant>,
}

impl Outbox {
    /// Queue `msg` for `due` (or for the due time of the message before it, if later).
    pub fn push(&mut self, due: Instant, msg: impl Into<Message>) {
        let due = self.last_due.map_or(due, |last| last.max(due));
        self.last_due = Some(due);
        self.queue.push_back((due, msg.into()));
    }

    /// Queue `msg` to go out now (after what is already queued).
    pub fn now(&mut self, msg: impl Into<Message>) {
        self.push(Instant::now(), msg);
    }

    /// Everything queued is due now (a flush or the end of the stream).
    pub fn release_all(&mut self, now: Instant) {
        self.queue.iter_mut().for_each(|(due, _)| *due = (*due).min(now));
        self.last_due = self.last_due.map(|d| d.min(now));
    }

    /// Drop what is queued (a fault that loses pending results).
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Send every message due by now, in order.
    pub async fn send_due<S: Sink<Message> + Unpin>(&mut self, ws: &mut S) -> Result<(), S::Error> {
        let now = Instant::now();
        while self.next_due().is_some_and(|d| d <= now) {
            if let Some((_, msg)) = self.queue.pop_front() {
                ws.send(msg).await?;
            }
        }
        Ok(())
    }

    /// Send everything queued, due or not.
    pub async fn send_all<S: Sink<Message> + Unpin>(&mut self, ws: &mut S) -> Result<(), S::Error> {
        self.release_all(Instant::now());
        self.send_due(ws).await
    }
}

/// What the loop does after a protocol handled a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Keep serving; the frame was activity (restarts the idle timer).
    Active,
    /// Send everything queued, then close with this code and reason (and wait briefly for the
    /// client's close). Clear the outbox first to lose pending messages instead.
    Close(u16, String),
    /// Stop serving without a close frame.
    End,
}

impl Flow {
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close(code, reason.into())
    }
}

/// One provider's per-connection protocol, driven by [`run`].
pub trait Protocol: Send {
    /// Messages sent as soon as the socket is open (`Connected`, `Begin`).
    fn on_open(&mut self, _out: &mut Outbox) {}

    /// A text or binary frame from the client (pings and closes are handled by the loop).
    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow;

    /// How long the stream may go without [`Flow::Active`] frames; asked again after every
    /// frame, so it may change (a first message expected within a deadline). `None`: forever.
    fn idle_timeout(&self) -> Option<Duration> {
        None
    }

    /// The idle timeout passed: the provider's idle close.
    fn on_idle(&mut self, _out: &mut Outbox) -> Flow {
        Flow::close(1011, "idle timeout")
    }
}

/// Serve `ws` with `proto` until either side closes or `stop` fires.
pub async fn run<S, P>(ws: &mut S, proto: &mut P, stop: &CancellationToken)
where
    S: Sink<Message> + Stream<Item = Result<Message, WsError>> + Unpin,
    P: Protocol,
{
    let mut out = Outbox::default();
    proto.on_open(&mut out);
    let mut last_active = Instant::now();
    let due = tokio::time::sleep(FAR);
    let idle = tokio::time::sleep(FAR);
    tokio::pin!(due, idle);
    loop {
        if out.send_due(ws).await.is_err() {
            return;
        }
        // Timers are reset only when their deadline moves: not once per audio frame.
        if let Some(next) = out.next_due().filter(|next| *next != due.deadline()) {
            due.as_mut().reset(next);
        }
        let idle_at = proto.idle_timeout().map(|t| last_active + t);
        if let Some(at) = idle_at.filter(|at| *at != idle.deadline()) {
            idle.as_mut().reset(at);
        }
        let flow = tokio::select! {
            () = stop.cancelled() => return,
            msg = ws.next() => match msg {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Close(_))) => {
                    drain(ws).await;
                    return;
                }
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => proto.on_frame(m, &mut out),
                Some(Ok(_)) => Flow::Continue,
            },
            () = &mut due, if out.next_due().is_some() => Flow::Continue,
            () = &mut idle, if idle_at.is_some() => match proto.on_idle(&mut out) {
                Flow::Continue => Flow::Active,
                other => other,
            },
        };
        match flow {
            Flow::Continue => {}
            Flow::Active => last_active = Instant::now(),
            Flow::Close(code, reason) => {
                if out.send_all(ws).await.is_ok() {
                    close(ws, code, &reason).await;
                }
                return;
            }
            Flow::End => return,
        }
    }
}

/// Send a close frame and wait (briefly) for the client's reply so the close is clean.
pub async fn close<S>(ws: &mut S, code: u16, reason: &str)
where
    S: Sink<Message> + Stream<Item = Result<Message, WsError>> + Unpin,
{
    let frame = CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason) };
    if ws.send(Message::Close(Some(frame))).await.is_ok() {
        drain(ws).await;
    }
}

/// Read (and drop) until the client completes the close or goes away.
pub async fn drain<S>(ws: &mut S)
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_keeps_order_and_releases() {
        let t0 = Instant::now();
        let mut ob = Outbox::default();
        ob.push(t0 + Duration::from_millis(300), "final".to_string());
        ob.push(t0, "later but queued behind".to_string());
        assert_eq!(ob.queue.back().map(|q| q.0), Some(t0 + Duration::from_millis(300)));
        ob.release_all(t0);
        assert_eq!(ob.next_due(), Some(t0));
        ob.now("next".to_string());
        assert_eq!(ob.len(), 3);
        ob.clear();
        assert!(ob.is_empty());
    }
}
