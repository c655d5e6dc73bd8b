//! Plumbing shared by the WebSocket STT simulators: a loopback server with key and connection
//! counters, either on raw tungstenite ([`Server`] + [`Service`]: Deepgram Flux, AssemblyAI,
//! Soniox) or on axum, serving the provider's HTTP calls (key checks, session init) and its
//! WebSocket on one port ([`HttpServer`]: ElevenLabs, Cartesia, Gladia, Transcribe); a timed
//! outbox, linear16 decoding and close helpers for both. Each provider module only speaks its
//! own protocol.

use super::SimKeys;
use axum::Router;
use futures::future::BoxFuture;
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use url::Url;

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// An HTTP refusal at the upgrade: status and JSON body.
pub(crate) type Refusal = (StatusCode, String);

/// A client that opens TCP but never sends its upgrade request is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters and keys shared by a simulator's handlers and its test handle.
#[derive(Default)]
pub(crate) struct Stats {
    /// The keys the simulator accepts (clones share one set with its config); the axum
    /// simulators check them here.
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
        self.key_accepted(key);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self)
    }

    pub(crate) fn seen_keys(&self) -> Vec<String> {
        self.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// WebSocket upgrades accepted since start (including ones later refused in-band).
    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A connection authenticated with `key` (test inspection only; never logged).
    pub(crate) fn key_accepted(&self, key: &str) {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
    }

    pub(crate) fn audio(&self, bytes: usize) {
        self.audio_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

pub(crate) struct OpenGuard<'a>(&'a Stats);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One provider's side of the protocol, plugged into [`Server`].
pub(crate) trait Service: Send + Sync + 'static {
    /// What the upgrade check hands to [`Service::run`].
    type Accepted: Send + 'static;
    /// For log lines.
    const NAME: &'static str;
    /// Path, query and header checks, answered like the provider answers them.
    fn upgrade(&self, req: &Request) -> Result<Self::Accepted, Refusal>;
    /// Serve one accepted connection until it closes or `stop` fires.
    fn run(
        self: Arc<Self>,
        ws: Ws,
        acc: Self::Accepted,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()>;
}

/// A running loopback server; stops (listener and every connection) on drop.
pub(crate) struct Server {
    addr: SocketAddr,
    base_url: Url,
    stats: Arc<Stats>,
    stop: CancellationToken,
}

impl Server {
    pub(crate) async fn start<S: Service>(listener: TcpListener, svc: Arc<S>) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("ws://{addr}")).map_err(std::io::Error::other)?;
        let stats = Arc::new(Stats::default());
        let stop = CancellationToken::new();
        let conn_stats = stats.clone();
        tokio::spawn(simkit::accept_loop(listener, S::NAME, stop.clone(), move |stream, stop| {
            serve(stream, svc.clone(), conn_stats.clone(), stop)
        }));
        Ok(Self { addr, base_url, stats, stop })
    }

    pub(crate) fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn seen_keys(&self) -> Vec<String> {
        self.stats.seen_keys()
    }

    /// WebSocket upgrades accepted since start (including ones later refused in-band).
    pub(crate) fn connections(&self) -> usize {
        self.stats.connections()
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.stats.open_connections()
    }

    pub(crate) fn audio_bytes_received(&self) -> u64 {
        self.stats.audio_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve<S: Service>(stream: TcpStream, svc: Arc<S>, stats: Arc<Stats>, stop: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let mut accepted = None;
    #[allow(clippy::result_large_err)] // the shape tungstenite's `Callback` requires
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        accepted = Some(svc.upgrade(req).map_err(|(status, body)| refuse(status, body))?);
        Ok(resp)
    };
    let ws = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_hdr_async(stream, callback)) => match r {
            Ok(Ok(ws)) => ws,
            Err(_) => return,
            Ok(Err(e)) => {
                tracing::debug!(sim = S::NAME, error = %e, "sim: handshake ended");
                return;
            }
        },
    };
    let Some(acc) = accepted else {
        return;
    };
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    stats.open.fetch_add(1, Ordering::Relaxed);
    svc.run(ws, acc, stats.clone(), stop).await;
    stats.open.fetch_sub(1, Ordering::Relaxed);
}

fn refuse(status: StatusCode, body: String) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A served axum router; dropping it stops the listener and (through `stop`) every open stream.
pub(crate) struct HttpServer {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
}

impl HttpServer {
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

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The query of an upgrade request as owned pairs.
pub(crate) fn query_pairs(req: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect()
}

/// Messages waiting for their due time. Due times never decrease, so order is kept.
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

    /// Everything queued is due now (a flush or the end of the stream).
    pub(crate) fn release_all(&mut self, now: Instant) {
        self.queue.iter_mut().for_each(|(due, _)| *due = (*due).min(now));
        self.last_due = self.last_due.map(|d| d.min(now));
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// Send every message due by now, in order, as text frames.
    pub(crate) async fn send_due<S: Sink<M> + Unpin, M: Frame>(&mut self, ws: &mut S) -> Result<(), S::Error> {
        let now = Instant::now();
        while self.next_due().is_some_and(|d| d <= now) {
            if let Some((_, msg)) = self.queue.pop_front() {
                ws.send(M::from(msg)).await?;
            }
        }
        Ok(())
    }

    /// Send everything queued, due or not (a flush or the end of the stream).
    pub(crate) async fn send_all<S: Sink<M> + Unpin, M: Frame>(&mut self, ws: &mut S) -> Result<(), S::Error> {
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

/// Little-endian linear16 decoding into a reused buffer, carrying an odd byte across frames.
#[derive(Default)]
pub(crate) struct Pcm {
    odd: Option<u8>,
    pcm: Vec<i16>,
}

impl Pcm {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> &[i16] {
        self.pcm.clear();
        let mut rest = bytes;
        if let (Some(lo), Some((&hi, tail))) = (self.odd, bytes.split_first()) {
            self.pcm.push(i16::from_le_bytes([lo, hi]));
            self.odd = None;
            rest = tail;
        }
        let mut pairs = rest.chunks_exact(2);
        self.pcm.extend((&mut pairs).map(|p| match p {
            [lo, hi] => i16::from_le_bytes([*lo, *hi]),
            _ => 0,
        }));
        if let [b] = pairs.remainder() {
            self.odd = Some(*b);
        }
        &self.pcm
    }
}

/// A message type of either server stack (tungstenite's or axum's): text from a `String`, and
/// a close frame.
pub(crate) trait Frame: From<String> {
    fn close(code: u16, reason: &str) -> Self;
}

impl Frame for Message {
    fn close(code: u16, reason: &str) -> Self {
        Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason) }))
    }
}

impl Frame for axum::extract::ws::Message {
    fn close(code: u16, reason: &str) -> Self {
        Self::Close(Some(axum::extract::ws::CloseFrame { code, reason: reason.into() }))
    }
}

/// Send a close frame and wait (briefly) for the client's reply so the close is clean.
pub(crate) async fn close<S, M, E>(ws: &mut S, code: u16, reason: &str)
where
    S: Sink<M> + Stream<Item = Result<M, E>> + Unpin,
    M: Frame,
{
    if ws.send(M::close(code, reason)).await.is_ok() {
        drain(ws).await;
    }
}

/// Read (and drop) until the client completes the close or goes away.
pub(crate) async fn drain<S, M, E>(ws: &mut S)
where
    S: Stream<Item = Result<M, E>> + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

/// Round to the millisecond, as providers report times.
pub(crate) fn ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Whole milliseconds of a time in seconds.
pub(crate) fn to_ms(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_decoding_carries_odd_bytes() {
        let mut d = Pcm::default();
        assert_eq!(d.decode(&[0x01, 0x00, 0xff]), &[1i16]);
        assert_eq!(d.decode(&[0xff, 0x02, 0x00]), &[-1i16, 2]);
    }

    #[test]
    fn outbox_keeps_order_and_releases() {
        let t0 = Instant::now();
        let mut ob = Outbox::default();
        ob.push(t0 + Duration::from_millis(300), "final".into());
        ob.push(t0, "later but queued behind".into());
        assert_eq!(ob.queue.back().map(|q| q.0), Some(t0 + Duration::from_millis(300)));
        ob.release_all(t0);
        assert_eq!(ob.next_due(), Some(t0));
        assert_eq!((to_ms(1.2344), to_ms(-1.0), ms(0.12345)), (1234, 0, 0.123));
    }
}
