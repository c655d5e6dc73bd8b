//! A loopback server for simulators whose providers answer plain REST calls (key checks) and
//! websocket upgrades on one host: it reads the request head itself, lets the simulator route
//! it, then either writes a JSON reply or replays the head into a websocket handshake.

use super::SimKeys;
use std::future::Future;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Chain, Join};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use url::Url;

/// The connection after its head was read: the head is replayed first.
pub(crate) type SimIo = Join<Chain<Cursor<Vec<u8>>, OwnedReadHalf>, OwnedWriteHalf>;
pub(crate) type SimWs = WebSocketStream<SimIo>;

/// Longest request head accepted; real clients send well under 2 KiB.
const MAX_HEAD: usize = 16 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Method, target and headers of one request.
#[derive(Debug, Default)]
pub(crate) struct RequestHead {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Names lowercased.
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn parse(head: &str) -> Option<Self> {
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_string();
        let target = first.next()?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(Self { method, path: path.to_string(), query: query.to_string(), headers })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name`, decoded.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub(crate) fn is_websocket(&self) -> bool {
        self.method == "GET" && self.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// The key after `prefix` in header `name` (`Authorization: Token …`), if any.
    pub(crate) fn header_key(&self, name: &str, prefix: &str) -> Option<&str> {
        let v = self.header(name)?;
        let head = v.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix).then(|| v.get(prefix.len()..)).flatten().map(str::trim)
    }
}

/// A JSON answer to a request that is not (or may not become) a websocket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub(crate) fn new(status: u16, body: impl Into<String>) -> Self {
        Self { status, body: body.into() }
    }
}

pub(crate) enum Route<S> {
    Reply(Reply),
    Upgrade(S),
}

/// Counters and keys one simulator's tests inspect.
#[derive(Default)]
pub(crate) struct Stats {
    pub keys: SimKeys,
    seen_keys: Mutex<Vec<String>>,
    pub chars_received: AtomicU64,
    pub open: AtomicUsize,
    pub accepted: AtomicU64,
}

impl Stats {
    /// Records `key` as presented and says whether it is accepted.
    pub(crate) fn check_key(&self, key: &str) -> bool {
        if let Ok(mut seen) = self.seen_keys.lock() {
            seen.push(key.to_string());
        }
        self.keys.contains(key)
    }

    pub(crate) fn seen_keys(&self) -> Vec<String> {
        self.seen_keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    pub(crate) fn add_chars(&self, text: &str) {
        self.chars_received.fetch_add(text.chars().count() as u64, Ordering::Relaxed);
    }
}

/// One simulated provider: how to route a request and how to run an accepted socket.
pub(crate) trait Service: Send + Sync + 'static {
    /// What the upgrade request told the connection.
    type Session: Send + 'static;
    fn name(&self) -> &'static str;
    fn route(&self, head: &RequestHead, stats: &Stats) -> Route<Self::Session>;
    fn serve(
        self: Arc<Self>,
        ws: SimWs,
        session: Self::Session,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send;
}

/// A running server; stops (listener and every connection) on drop.
pub(crate) struct SimServer {
    addr: SocketAddr,
    base_url: Url,
    pub stats: Arc<Stats>,
    stop: CancellationToken,
}

impl SimServer {
    pub(crate) async fn start<S: Service>(listener: TcpListener, keys: SimKeys, service: S) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let base_url = Url::parse(&format!("ws://{addr}")).map_err(std::io::Error::other)?;
        let stats = Arc::new(Stats { keys, ..Default::default() });
        let stop = CancellationToken::new();
        let service = Arc::new(service);
        let conn_stats = stats.clone();
        tokio::spawn(simkit::accept_loop(listener, service.name(), stop.clone(), move |stream, stop| {
            handle(stream, service.clone(), conn_stats.clone(), stop)
        }));
        Ok(Self { addr, base_url, stats, stop })
    }

    pub(crate) fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn handle<S: Service>(stream: TcpStream, service: Arc<S>, stats: Arc<Stats>, stop: CancellationToken) {
    let (mut read, mut write) = stream.into_split();
    let raw = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut read)) => match r {
            Ok(Some(raw)) => raw,
            _ => return,
        },
    };
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = raw.get(..head_end).and_then(|h| std::str::from_utf8(h).ok()).and_then(RequestHead::parse);
    let Some(head) = head else {
        let _ = write_reply(&mut write, &Reply::new(400, r#"{"error":"malformed request"}"#)).await;
        return;
    };
    let session = match service.route(&head, &stats) {
        Route::Reply(r) => {
            let _ = write_reply(&mut write, &r).await;
            return;
        }
        Route::Upgrade(s) => s,
    };
    let io = tokio::io::join(Cursor::new(raw).chain(read), write);
    let ws = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio_tungstenite::accept_async(io) => match r {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, sim = service.name(), "handshake ended");
                return;
            }
        },
    };
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    stats.open.fetch_add(1, Ordering::Relaxed);
    service.serve(ws, session, stats.clone(), stop).await;
    stats.open.fetch_sub(1, Ordering::Relaxed);
}

/// Reads until the blank line that ends the head; `None` on EOF or an oversized head.
async fn read_head<R: AsyncRead + Unpin>(read: &mut R) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = read.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(chunk.get(..n)?);
        if buf.get(from..)?.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(buf);
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

async fn write_reply(write: &mut OwnedWriteHalf, r: &Reply) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        r.body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(r.body.as_bytes()).await?;
    write.shutdown().await
}

/// Sends a close frame and waits briefly for the client's reply so it sees a clean close.
pub(crate) async fn close(ws: &mut SimWs, code: u16, reason: &str) {
    use futures::StreamExt;
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
    if ws.close(Some(frame)).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async { while ws.next().await.is_some() {} }).await;
    }
}

/// The next text frame's contents; `None` when the client has gone.
pub(crate) enum Frame {
    Text(String),
    Other,
    Gone,
}

pub(crate) fn frame(msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> Frame {
    match msg {
        Some(Ok(Message::Text(t))) => Frame::Text(t.to_string()),
        Some(Ok(Message::Close(_)) | Err(_)) | None => Frame::Gone,
        Some(Ok(_)) => Frame::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_keys() {
        let h = RequestHead::parse(
            "GET /v1/speak?model=aura-2-thalia-en&sample_rate=16000 HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nAuthorization: token abc \r\n",
        )
        .unwrap();
        assert_eq!(h.path, "/v1/speak");
        assert_eq!(h.query_param("model").as_deref(), Some("aura-2-thalia-en"));
        assert!(h.is_websocket());
        assert_eq!(h.header_key("authorization", "Token "), Some("abc"));
        assert_eq!(h.header_key("authorization", "Bearer "), None);
        assert!(RequestHead::parse("").is_none());
    }
}
