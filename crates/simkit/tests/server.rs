//! The generic simulator server end to end: REST replies and refusals, an upgrade with extra
//! headers, the frame loop's due times, idle close and close codes, and stop on drop.

use futures::{SinkExt, StreamExt};
use simkit::{Flow, Message, Outbox, Protocol, Reply, Request, Route, Service, SimKeys, SimServer, Stats, Ws};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

struct Echo;

/// Echoes text 50 ms later; `close` closes 4000; binary is activity.
struct EchoProtocol;

impl Protocol for EchoProtocol {
    fn on_open(&mut self, out: &mut Outbox) {
        out.now("hello".to_string());
    }

    fn on_frame(&mut self, msg: Message, out: &mut Outbox) -> Flow {
        match msg {
            Message::Text(t) if t.as_str() == "close" => Flow::close(4000, "bye"),
            Message::Text(t) => {
                out.push(Instant::now() + Duration::from_millis(50), t.to_string());
                Flow::Continue
            }
            _ => Flow::Active,
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        Some(Duration::from_millis(300))
    }
}

impl Service for Echo {
    type Session = String;
    const NAME: &'static str = "echo";

    fn route(&self, req: &Request, stats: &Stats) -> Route<String> {
        if req.path == "/models" {
            return Route::Reply(Reply::json(200, format!("{{\"body\":{}}}", req.body.len())));
        }
        match req.header_key("authorization", "Token ") {
            Some(k) if stats.check_key(k) && req.is_websocket() => {
                Route::UpgradeWith(k.to_string(), vec![("x-request-id", "r1".into())])
            }
            _ => Route::Reply(Reply::json(401, r#"{"error":"bad key"}"#).header("x-why", "key")),
        }
    }

    async fn serve(self: Arc<Self>, mut ws: Ws, key: String, stats: Arc<Stats>, stop: CancellationToken) {
        let _open = stats.open();
        stats.received(key.len());
        simkit::run(&mut ws, &mut EchoProtocol, &stop).await;
    }
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Client) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap()
}

async fn http(sim: &SimServer<Echo>, raw: &str) -> String {
    let mut c = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    c.write_all(raw.replacen("\r\n", "\r\nConnection: close\r\n", 1).as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut out)).await.unwrap().unwrap();
    out
}

#[tokio::test]
async fn rest_upgrade_frames_idle_and_stop() {
    let sim = SimServer::start(SimKeys::from(&["k1"][..]), Echo).await.unwrap();
    assert_eq!(sim.base_url().as_str(), format!("ws://{}/", sim.addr()));

    let reply = http(&sim, "POST /models HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("{\"body\":3}"), "{reply}");
    let refused = http(&sim, "GET /listen HTTP/1.1\r\nAuthorization: Token nope\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 401") && refused.contains("x-why: key"), "{refused}");

    let mut req = format!("{}listen", sim.base_url()).into_client_request().unwrap();
    req.headers_mut().insert("authorization", "Token k1".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req.clone()).await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "r1");
    assert_eq!(next(&mut ws).await, Message::text("hello"));
    let t0 = Instant::now();
    ws.send(Message::text("one")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("one"));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!((sim.connections(), sim.open_connections(), sim.received()), (1, 1, 2));
    assert_eq!(sim.seen_keys(), ["nope", "k1"]);

    // Binary frames hold the stream open past the idle timeout; silence closes it 1011.
    for _ in 0..5 {
        ws.send(Message::binary(vec![0u8; 4])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match next(&mut ws).await {
        Message::Close(Some(f)) => assert_eq!((u16::from(f.code), f.reason.as_str()), (1011, "idle timeout")),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() >= Duration::from_millis(700), "{:?}", t0.elapsed());

    let (mut ws, _) = tokio_tungstenite::connect_async(req.clone()).await.unwrap();
    next(&mut ws).await;
    ws.send(Message::text("close")).await.unwrap();
    match next(&mut ws).await {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 4000),
        other => panic!("{other:?}"),
    }

    let (mut ws, _) = tokio_tungstenite::connect_async(req.clone()).await.unwrap();
    next(&mut ws).await;
    drop(sim);
    assert!(tokio::time::timeout(Duration::from_secs(2), ws.next()).await.is_ok(), "socket dropped");
    assert!(tokio_tungstenite::connect_async(req).await.is_err(), "listener stopped");
}

/// Answers `/later` only once the test lets it through `go` (a simulator calling a peer back
/// first), telling `routed` it has the request; `/gone` with a bodyless 204.
struct Later {
    go: Arc<Notify>,
    routed: Arc<Notify>,
}

impl Service for Later {
    type Session = std::convert::Infallible;
    const NAME: &'static str = "later";
    const SCHEME: &'static str = "http";

    fn route(&self, req: &Request, _: &Stats) -> Route<Self::Session> {
        if req.path == "/gone" {
            return Route::Reply(Reply::empty(204));
        }
        self.routed.notify_one();
        let go = self.go.clone();
        Route::Deferred(Box::pin(async move {
            go.notified().await;
            Reply::json(202, r#"{"after":"call-back"}"#)
        }))
    }

    async fn serve(self: Arc<Self>, _: Ws, session: Self::Session, _: Arc<Stats>, _: CancellationToken) {
        match session {}
    }
}

async fn send(addr: std::net::SocketAddr, raw: &'static str) -> tokio::task::JoinHandle<String> {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(raw.replacen("\r\n", "\r\nConnection: close\r\n", 1).as_bytes()).await.unwrap();
    tokio::spawn(async move {
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut out)).await.unwrap().unwrap();
        out
    })
}

#[tokio::test]
async fn a_deferred_reply_waits_for_its_future_and_ends_with_the_simulator() {
    let (go, routed) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let sim = SimServer::start(SimKeys::default(), Later { go: go.clone(), routed: routed.clone() }).await.unwrap();

    let mut pending = send(sim.addr(), "POST /later HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    routed.notified().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut pending).await.is_err(),
        "answered before the future"
    );
    go.notify_one();
    let reply = pending.await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 202 Accepted\r\n") && reply.ends_with(r#"{"after":"call-back"}"#), "{reply}");

    let gone = send(sim.addr(), "DELETE /gone HTTP/1.1\r\n\r\n").await.await.unwrap();
    assert_eq!(gone, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");

    // Stopping the simulator ends a reply still waiting: the connection closes unanswered.
    let pending = send(sim.addr(), "POST /later HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    routed.notified().await;
    drop(sim);
    assert_eq!(pending.await.unwrap(), "");
}
