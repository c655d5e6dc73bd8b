//! The loopback server every simulator runs on: accept, read the request, let the simulator
//! route it (a REST reply, a refusal, or a websocket upgrade), and hand each upgraded socket to
//! the simulator. [`SimServer`] is the running handle: base URL, keys, counters, stop on drop.

use crate::request::{self, Reply, Request, HEAD_TIMEOUT};
use crate::{RunningSim, SimKeys};
use std::future::Future;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, Chain, Join};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request as WsRequest, Response};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use url::Url;

/// A connection after its head was read: the head is replayed into the handshake first.
pub type Io = Join<Chain<Cursor<Vec<u8>>, OwnedReadHalf>, OwnedWriteHalf>;
/// An accepted simulator websocket.
pub type Ws = WebSocketStream<Io>;

/// What a simulator makes of one request.
pub enum Route<S> {
    /// Answer with this: a REST reply (the connection then serves the client's next request
    /// if it keeps it alive) or a refusal before the upgrade.
    Reply(Reply),
    /// Complete the websocket handshake and serve the socket with this session.
    Upgrade(S),
    /// As [`Route::Upgrade`], with extra headers on the `101` (request ids).
    UpgradeWith(S, Vec<(&'static str, String)>),
    /// A REST reply whose body streams as it is produced (chunked), as a provider streams
    /// audio or tokens: the [`Reply`]'s status, type and headers, then `body`. An error item
    /// cuts the connection mid-body (a provider fault). Counted as an open stream while it
    /// lasts; it ends early when the client hangs up or the simulator is dropped.
    Stream(Reply, BodyStream),
    /// A REST reply that takes an await to produce: the simulator calls a peer back before it
    /// answers (Plivo fetches a transfer's XML), so a test that has the answer also sees what
    /// the call-back brought. The connection waits for it until the client hangs up or the
    /// simulator stops (either drops the future: a request given up on has no effect); the
    /// future bounds its own waits on peers.
    Deferred(DeferredReply),
}

/// The reply of a [`Route::Deferred`].
pub type DeferredReply = std::pin::Pin<Box<dyn Future<Output = Reply> + Send>>;

/// The body of a [`Route::Stream`] reply.
pub type BodyStream = std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Vec<u8>>> + Send>>;

/// One simulated provider: how to route a request and how to serve an accepted socket.
/// A simulator is this plus its protocol ([`crate::Protocol`]).
pub trait Service: Send + Sync + 'static {
    /// What the upgrade request told the socket (query options, the key it proved).
    type Session: Send + 'static;
    /// For log lines.
    const NAME: &'static str;
    /// Scheme of [`SimServer::base_url`]: `ws`, or `http` for providers reached by REST first.
    const SCHEME: &'static str = "ws";
    /// Path of [`SimServer::base_url`] (`/v1` for OpenAI-shaped APIs); empty for none.
    const BASE_PATH: &'static str = "";
    /// Longest request body read; a longer one is refused with a `413` before routing.
    /// 1 MiB by default; an API taking whole conversations raises it.
    const MAX_BODY: usize = request::MAX_BODY;

    /// Path, key and query checks, answered like the provider answers them. Runs before the
    /// handshake, so a refusal is a real HTTP status.
    fn route(&self, req: &Request, stats: &Stats) -> Route<Self::Session>;

    /// Serve one upgraded socket until it closes or `stop` fires (usually [`crate::run`]).
    /// A REST-only simulator (one that never routes to an upgrade) keeps the default, which
    /// closes the socket.
    fn serve(
        self: Arc<Self>,
        ws: Ws,
        session: Self::Session,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ws, session, stats, stop);
        async {}
    }
}

/// Keys and counters shared by a simulator's handlers and its running handle.
#[derive(Default)]
pub struct Stats {
    /// The keys the simulator accepts (clones share one set: tests add keys while running).
    pub keys: SimKeys,
    seen_keys: Mutex<Vec<String>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
    received: AtomicU64,
}

impl Stats {
    pub fn new(keys: SimKeys) -> Self {
        Self { keys, ..Self::default() }
    }

    /// Record `key` as presented (test inspection only; never logged).
    pub fn saw_key(&self, key: &str) {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
    }

    /// Records `key` as presented and says whether it is accepted.
    pub fn check_key(&self, key: &str) -> bool {
        self.saw_key(key);
        self.keys.contains(key)
    }

    /// A stream authenticated with `key`: the key is recorded and the stream counted (open
    /// until the guard drops).
    pub fn accept(&self, key: &str) -> OpenGuard<'_> {
        self.saw_key(key);
        self.open()
    }

    /// A stream counted without a key (one refused in-band later still counts as accepted).
    pub fn open(&self) -> OpenGuard<'_> {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self)
    }

    /// What the simulator received, in its service's unit (audio bytes, characters).
    pub fn received(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn seen_keys(&self) -> Vec<String> {
        self.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Streams accepted since start.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Streams currently open.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Total of [`Stats::received`] over all streams.
    pub fn received_total(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Counts a stream open until dropped.
pub struct OpenGuard<'a>(&'a Stats);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A simulator serving on a loopback port; stops (listener and every connection) on drop.
pub struct SimServer<S> {
    addr: SocketAddr,
    base_url: Url,
    service: Arc<S>,
    stats: Arc<Stats>,
    stop: CancellationToken,
}

impl<S: Service> SimServer<S> {
    /// Binds 127.0.0.1:0.
    pub async fn start(keys: SimKeys, service: S) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, keys, service).await
    }

    /// Serves on a listener the caller bound (a standalone simulator on a fixed port).
    pub async fn start_on(listener: TcpListener, keys: SimKeys, service: S) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("{}://{addr}{}", S::SCHEME, S::BASE_PATH)).map_err(std::io::Error::other)?;
        let stats = Arc::new(Stats::new(keys));
        let stop = CancellationToken::new();
        let service = Arc::new(service);
        let (svc, conn_stats) = (service.clone(), stats.clone());
        tokio::spawn(crate::accept_loop(listener, S::NAME, stop.clone(), move |stream, stop| {
            handle(stream, svc.clone(), conn_stats.clone(), stop)
        }));
        Ok(Self { addr, base_url, service, stats, stop })
    }

    /// What an adapter is given as its base URL.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accepted keys; add to them while running.
    pub fn keys(&self) -> &SimKeys {
        &self.stats.keys
    }

    /// The key of every accepted stream or request, in order. Test inspection only.
    pub fn seen_keys(&self) -> Vec<String> {
        self.stats.seen_keys()
    }

    /// Streams accepted since start.
    pub fn connections(&self) -> usize {
        self.stats.connections()
    }

    /// Streams currently open.
    pub fn open_connections(&self) -> usize {
        self.stats.open_connections()
    }

    /// What the simulator received over all streams (audio bytes, characters).
    pub fn received(&self) -> u64 {
        self.stats.received_total()
    }

    /// The simulator itself, for its own counters.
    pub fn service(&self) -> &S {
        &self.service
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl<S: Service> RunningSim for SimServer<S> {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    fn seen_keys(&self) -> Vec<String> {
        self.stats.seen_keys()
    }

    fn stats(&self) -> Option<&Stats> {
        Some(&self.stats)
    }
}

impl<S> Drop for SimServer<S> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Resolves when the client closes its side (or the connection fails): a streamed reply stops
/// at once instead of at its next write, as hyper does. Anything the client sends meanwhile is
/// kept in `pending` (its next request, if it pipelines).
async fn hung_up(read: &mut OwnedReadHalf, pending: &mut Vec<u8>) {
    let mut buf = [0u8; 512];
    while let Ok(n @ 1..) = read.read(&mut buf).await {
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

/// How long a kept-alive connection waits for its next request; longer than an HTTP client's
/// pool keeps an idle connection (reqwest: 90 s), so the client is the one that closes it and
/// never sends a request into a connection the simulator is closing.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Serves one connection: REST requests one after another while the client keeps it alive,
/// or one websocket upgrade.
async fn handle<S: Service>(stream: TcpStream, service: Arc<S>, stats: Arc<Stats>, stop: CancellationToken) {
    let local_addr = stream.local_addr().ok();
    let (mut read, mut write) = stream.into_split();
    let mut pending = Vec::new();
    let mut wait = HEAD_TIMEOUT;
    loop {
        let (raw, req) = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(wait, request::read(&mut read, &mut pending, S::MAX_BODY)) => match r {
                Ok(Some(read)) => read,
                _ => return,
            },
        };
        let mut req = match req {
            Ok(req) => req,
            Err(refusal) => {
                let _ = request::write_reply(&mut write, &refusal, true).await;
                return;
            }
        };
        req.local_addr = local_addr;
        let close = req.closes;
        let replied = match service.route(&req, &stats) {
            Route::Reply(r) => request::write_reply(&mut write, &r, close).await.is_ok(),
            Route::Deferred(reply) => tokio::select! {
                () = stop.cancelled() => false,
                () = hung_up(&mut read, &mut pending) => false,
                r = reply => request::write_reply(&mut write, &r, close).await.is_ok(),
            },
            Route::Stream(head, body) => {
                let _open = stats.open();
                tokio::select! {
                    () = stop.cancelled() => false,
                    () = hung_up(&mut read, &mut pending) => false,
                    r = request::write_stream(&mut write, &head, body, close) => r.is_ok(),
                }
            }
            Route::Upgrade(session) => {
                return upgrade(service, (raw, read, write), session, Vec::new(), stats, stop).await
            }
            Route::UpgradeWith(session, headers) => {
                return upgrade(service, (raw, read, write), session, headers, stats, stop).await
            }
        };
        if !replied || close {
            return;
        }
        wait = IDLE_TIMEOUT;
    }
}

/// Completes the websocket handshake (replaying the head already read) and serves the socket.
async fn upgrade<S: Service>(
    service: Arc<S>,
    (raw, read, write): (Vec<u8>, OwnedReadHalf, OwnedWriteHalf),
    session: S::Session,
    headers: Vec<(&'static str, String)>,
    stats: Arc<Stats>,
    stop: CancellationToken,
) {
    let io = tokio::io::join(Cursor::new(raw).chain(read), write);
    #[allow(clippy::result_large_err)] // the shape tungstenite's `Callback` requires
    let add_headers = |_: &WsRequest, mut resp: Response| -> Result<Response, ErrorResponse> {
        for (k, v) in &headers {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                resp.headers_mut().insert(k, v);
            }
        }
        Ok(resp)
    };
    let ws = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio::time::timeout(HEAD_TIMEOUT, tokio_tungstenite::accept_hdr_async(io, add_headers)) => match r {
            Ok(Ok(ws)) => ws,
            Err(_) => return,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, sim = S::NAME, "simulator: handshake ended");
                return;
            }
        },
    };
    service.serve(ws, session, stats, stop).await;
}
