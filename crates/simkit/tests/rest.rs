//! A REST-only simulator on the generic server (no `serve` of its own): chunked and sized
//! request bodies, its own body limit, and a streamed reply that ends as soon as the client
//! hangs up, not at its next write.

use simkit::{BodyStream, Reply, Request, Route, Service, SimKeys, SimServer, Stats};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `POST /echo` answers the body's length; `GET /slow` streams one chunk, then one an hour.
struct Rest;

impl Service for Rest {
    type Session = ();
    const NAME: &'static str = "rest";
    const SCHEME: &'static str = "http";
    const MAX_BODY: usize = 16;

    fn route(&self, req: &Request, _: &Stats) -> Route<()> {
        match (req.method.as_str(), req.path.as_str()) {
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

async fn exchange(sim: &SimServer<Rest>, raw: &str) -> String {
    let mut c = TcpStream::connect(sim.addr()).await.unwrap();
    c.write_all(raw.as_bytes()).await.unwrap();
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
