//! Pieces shared by the axum-based STT simulators (ElevenLabs, Cartesia, Gladia): one port
//! serving both the provider's HTTP calls (key checks, session init) and its WebSocket, the
//! bookkeeping tests inspect, PCM decoding and a due-time outbox for results.

use super::SimKeys;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::Router;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Counters and keys shared by a simulator's handlers and its test handle.
#[derive(Default)]
pub(crate) struct Stats {
    /// The keys the simulator accepts (clones share one set with its config).
    pub keys: SimKeys,
    seen_keys: Mutex<Vec<String>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
    pub audio_bytes: AtomicU64,
}

impl Stats {
    pub(crate) fn new(keys: SimKeys) -> Self {
        Self { keys, ..Self::default() }
    }

    /// Record an accepted stream; the guard counts it open until dropped.
    pub(crate) fn accept(&self, key: &str) -> OpenGuard<'_> {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self)
    }

    pub(crate) fn seen_keys(&self) -> Vec<String> {
        self.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

pub(crate) struct OpenGuard<'a>(&'a Stats);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A served router; dropping it stops the listener and (through `stop`) every open stream.
pub(crate) struct Server {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
}

impl Server {
    pub(crate) fn start(
        listener: TcpListener,
        app: Router,
        stop: CancellationToken,
        name: &'static str,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::warn!(error = %e, sim = name, "stt simulator stopped");
            }
        });
        Ok(Self { addr, stop })
    }

    /// `{scheme}://127.0.0.1:PORT`.
    pub(crate) fn url(&self, scheme: &str) -> std::io::Result<Url> {
        Url::parse(&format!("{scheme}://{}", self.addr)).map_err(std::io::Error::other)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Little-endian linear16 → samples, carrying an odd trailing byte to the next chunk. The
/// sample buffer is reused across chunks.
#[derive(Default)]
pub(crate) struct Pcm {
    odd: Option<u8>,
    buf: Vec<i16>,
}

impl Pcm {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> &[i16] {
        self.buf.clear();
        let mut rest = bytes;
        if let (Some(lo), Some((&hi, tail))) = (self.odd, bytes.split_first()) {
            self.buf.push(i16::from_le_bytes([lo, hi]));
            self.odd = None;
            rest = tail;
        }
        let mut pairs = rest.chunks_exact(2);
        self.buf.extend((&mut pairs).map(|p| match p {
            [lo, hi] => i16::from_le_bytes([*lo, *hi]),
            _ => 0,
        }));
        if let [b] = pairs.remainder() {
            self.odd = Some(*b);
        }
        &self.buf
    }
}

/// Messages waiting for their due time; due times never decrease, so order is kept.
#[derive(Default)]
pub(crate) struct Outbox {
    queue: VecDeque<(Instant, String)>,
    last_due: Option<Instant>,
}

impl Outbox {
    pub(crate) fn push(&mut self, due: Instant, msg: String) {
        let due = self.last_due.map_or(due, |last| last.max(due));
        self.last_due = Some(due);
        self.queue.push_back((due, msg));
    }

    /// Everything queued is due now (a flush or end of stream).
    pub(crate) fn release_all(&mut self, now: Instant) {
        self.queue.iter_mut().for_each(|(due, _)| *due = (*due).min(now));
        self.last_due = self.last_due.map(|d| d.min(now));
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// Send every message due by now, in order.
    pub(crate) async fn send_due(&mut self, ws: &mut WebSocket) -> Result<(), axum::Error> {
        let now = Instant::now();
        while self.next_due().is_some_and(|d| d <= now) {
            if let Some((_, msg)) = self.queue.pop_front() {
                ws.send(Message::text(msg)).await?;
            }
        }
        Ok(())
    }

    /// Send everything now (end of stream).
    pub(crate) async fn send_all(&mut self, ws: &mut WebSocket) -> Result<(), axum::Error> {
        self.release_all(Instant::now());
        self.send_due(ws).await
    }
}

/// A sleep to arm for the outbox's next due time (far future when empty).
pub(crate) fn rearm(due: std::pin::Pin<&mut tokio::time::Sleep>, outbox: &Outbox) {
    let next = outbox.next_due().unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
    if due.deadline() != next {
        due.reset(next);
    }
}

/// Send a close frame and wait briefly for the client's reply so the close is clean.
pub(crate) async fn close(ws: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame { code, reason: reason.into() };
    if ws.send(Message::Close(Some(frame))).await.is_ok() {
        drain(ws).await;
    }
}

pub(crate) async fn drain(ws: &mut WebSocket) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = ws.recv().await {} }).await;
}

/// Round to the millisecond, as providers report times.
pub(crate) fn ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_decoding_carries_odd_bytes() {
        let mut pcm = Pcm::default();
        assert_eq!(pcm.decode(&[0x01, 0x00, 0xff]), &[1i16]);
        assert_eq!(pcm.decode(&[0xff, 0x02, 0x00]), &[-1i16, 2]);
    }

    #[test]
    fn outbox_keeps_order() {
        let t0 = Instant::now();
        let mut ob = Outbox::default();
        ob.push(t0 + Duration::from_millis(300), "final".into());
        ob.push(t0, "next".into());
        assert_eq!(ob.queue.back().map(|q| q.0), Some(t0 + Duration::from_millis(300)));
        ob.release_all(t0);
        assert_eq!(ob.next_due(), Some(t0));
    }
}
