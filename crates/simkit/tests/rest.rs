//! A REST-only simulator on the generic server (no `serve` of its own): chunked and sized
//! request bodies, its own body limit, keep-alive, and a streamed reply that ends as soon as
//! the client hangs up, not at its next write.

use simkit::{BodyStream, Reply, Request, Route, Service, SimKeys, SimServer, Stats};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `POST /echo` answers the body's length; `GET /two` streams two chunks; `GET /slow` streams
/// one chunk, then one an hour.
struct Rest;

impl Service for Rest {
    type Session = ();
    const NAME: &'static str = "rest";
    const SCHEME: &'static str = "http";
    const MAX_BODY: usize = 16;

    fn route(&self, req: &Request, _: &Stats) -> Route<()> {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/two") => {
                let body: BodyStream = Box::pin(futures::stream::iter([Ok(b"one".to_vec()), Ok(b"two".to_vec())]));
                Route::Stream(Reply::with_type(200, "text/plain", ""), body)
            }
            ("POST", "/echo") => Route::Reply(Reply::json(200, format!("{{\"len\":{}}}", req.body.len()))),
            ("GET", "/slow") => {
                let body: BodyStream = Box::pin(futures::stream::unfold(0u32, |n| async move {
                    if n > 0 {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Some((Ok(b"tick\n".to_vec()), n + 1))
                }));
                Route::Stream(Reply::with_type(200, "text/plain", ""), body)
            }
            _ => Route::Reply(Reply::empty(405).header("allow", "POST")),
        }
    }
}

/// Sends `raw` with `Connection: close` and reads the reply to the end of the connection.
async fn exchange(sim: &SimServer<Rest>, raw: &str) -> String {
    let mut c = TcpStream::connect(sim.addr()).await.unwrap();
    c.write_all(raw.replacen("\r\n", "\r\nConnection: close\r\n", 1).as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut out)).await.unwrap().unwrap();
    out
}

#[tokio::test]
async fn bodies_limits_and_empty_replies() {
    let sim = SimServer::start(SimKeys::default(), Rest).await.unwrap();
    assert_eq!(sim.base_url().as_str(), format!("http://{}/", sim.addr()));
    let chunked = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n";
    let reply = exchange(&sim, chunked).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("{\"len\":7}"), "{reply}");
    let too_big = "POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n01234567890123456";
    let reply = exchange(&sim, too_big).await;
    assert!(reply.starts_with("HTTP/1.1 413 Payload Too Large\r\n"), "{reply}");
    let reply = exchange(&sim, "DELETE /echo HTTP/1.1\r\n\r\n").await;
    assert!(reply.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{reply}");
    assert!(!reply.to_ascii_lowercase().contains("content-type") && reply.contains("allow: POST"), "{reply}");
    assert!(reply.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"), "{reply}");

    // The same through a real client whose body is a stream (sent chunked).
    let body = reqwest::Body::wrap_stream(futures::stream::iter([Ok::<_, std::io::Error>("ab"), Ok("cde")]));
    let resp = reqwest::Client::new().post(format!("{}echo", sim.base_url())).body(body).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "{\"len\":5}");
}

#[tokio::test]
async fn a_stream_ends_when_the_client_hangs_up() {
    let sim = SimServer::start(SimKeys::default(), Rest).await.unwrap();
    let mut c = TcpStream::connect(sim.addr()).await.unwrap();
    c.write_all(b"GET /slow HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let mut got = Vec::new();
    while !got.ends_with(b"tick\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the stream ended early");
        got.extend_from_slice(&buf[..n]);
    }
    let got = String::from_utf8(got).unwrap();
    assert!(got.contains("Transfer-Encoding: chunked\r\n") && got.ends_with("\r\n\r\n5\r\ntick\n\r\n"), "{got}");
    assert_eq!((sim.connections(), sim.open_connections()), (1, 1));
    drop(c);
    // The next chunk is an hour away: only the hang-up itself can end the stream this soon.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while sim.open_connections() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the stream outlived its client");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads from `c` until `got` ends with `end`.
async fn read_until(c: &mut TcpStream, end: &[u8]) -> String {
    let (mut buf, mut got) = (vec![0u8; 1024], Vec::new());
    while !got.ends_with(end) {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the connection closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

/// An HTTP/1.1 client that does not ask to close gets its replies, sized and streamed, on one
/// connection, as from the providers' servers (a new TCP connection per LLM turn would cost
/// the server under test what production does not); `Connection: close` ends it.
#[tokio::test]
async fn a_connection_serves_requests_until_the_client_closes_it() {
    let sim = SimServer::start(SimKeys::default(), Rest).await.unwrap();
    let mut c = TcpStream::connect(sim.addr()).await.unwrap();
    c.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").await.unwrap();
    let first = read_until(&mut c, b"{\"len\":3}").await;
    assert!(!first.contains("Connection: close"), "{first}");
    c.write_all(b"GET /two HTTP/1.1\r\n\r\n").await.unwrap();
    let streamed = read_until(&mut c, b"0\r\n\r\n").await;
    assert!(streamed.ends_with("\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"), "{streamed}");
    c.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx").await.unwrap();
    let mut last = String::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut last)).await.unwrap().unwrap();
    assert!(last.contains("Connection: close\r\n") && last.ends_with("{\"len\":1}"), "{last}");

    // A pooled client reads each reply by its framing and sends the next on the same socket.
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let r = client.post(format!("{}echo", sim.base_url())).body("ab").send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "{\"len\":2}");
    }
}
