//! One HTTP request as a simulator sees it, read off the socket by hand (so the same port can
//! answer REST calls and hand websocket upgrades to the frame loop), and the reply written back.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest request head accepted; real clients send well under 2 KiB.
const MAX_HEAD: usize = 16 * 1024;
/// Longest request body a simulator accepts unless it says otherwise
/// ([`crate::Service::MAX_BODY`]); session-init JSON is a few hundred bytes in practice.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// A client that opens TCP but never finishes its request is dropped after this.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Method, target, headers and (for non-upgrade requests) body of one request.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, sized by `Content-Length` or chunked (empty for upgrades).
    pub body: Vec<u8>,
    /// The simulator's own address (to hand out URLs pointing back at it).
    pub local_addr: Option<SocketAddr>,
    /// HTTP/1.0, or `Connection: close`: the connection ends after this request's reply.
    pub closes: bool,
}

impl Request {
    /// Parses a head (request line and header lines, without the blank line).
    pub fn parse(head: &str) -> Option<Self> {
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next().filter(|m| !m.is_empty())?.to_string();
        let target = first.next()?;
        let http10 = first.next() == Some("HTTP/1.0");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut req = Self { method, path: path.to_string(), query: query.to_string(), headers, ..Self::default() };
        req.closes = http10 || req.header("connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        Some(req)
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The key after `prefix` in header `name` (`Authorization: Token …`), trimmed; the prefix
    /// matches in any case.
    pub fn header_key(&self, name: &str, prefix: &str) -> Option<&str> {
        let v = self.header(name)?;
        let head = v.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix).then(|| v.get(prefix.len()..)).flatten().map(str::trim)
    }

    /// The query as decoded pairs, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes()).into_owned().collect()
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// A `GET` asking to become a websocket.
    pub fn is_websocket(&self) -> bool {
        self.method == "GET" && self.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    fn content_length(&self) -> usize {
        self.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// The body comes in chunks (it then has no `Content-Length`, RFC 9112 §6.3).
    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// An HTTP answer that is not a websocket: a refusal at the upgrade, or a REST reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra headers (`x-amzn-ErrorType`, request ids).
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    /// A JSON reply, the shape of nearly every provider answer.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: "application/json", headers: Vec::new(), body: body.into() }
    }

    /// A reply of another content type (a plain-text token, AWS's JSON flavour).
    pub fn with_type(status: u16, content_type: &'static str, body: impl Into<String>) -> Self {
        Self { status, content_type, headers: Vec::new(), body: body.into() }
    }

    /// A reply without a body or content type (`204 No Content`, `405` with `Allow`).
    pub fn empty(status: u16) -> Self {
        Self::with_type(status, "", "")
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Reads the head and body of one request. `pending` holds what the connection read past the
/// previous request (a keep-alive client's next request may already be there) and keeps what
/// this one read past its own body. Returns the raw bytes from the head on (replayed into the
/// websocket handshake) and the parsed request, or the refusal to answer with (a malformed
/// head or body: 400; a body over `max_body`: 413). `None` on EOF or an oversized head.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    read: &mut R,
    pending: &mut Vec<u8>,
    max_body: usize,
) -> Option<(Vec<u8>, Result<Request, Reply>)> {
    let mut buf = std::mem::take(pending);
    let mut from = 0;
    let head_end = loop {
        if let Some(i) = buf.get(from..)?.windows(4).position(|w| w == b"\r\n\r\n") {
            break from + i;
        }
        from = buf.len().saturating_sub(3);
        if buf.len() > MAX_HEAD || fill(read, &mut buf).await? == 0 {
            return None;
        }
    };
    let Some(mut req) = buf.get(..head_end).and_then(|h| std::str::from_utf8(h).ok()).and_then(Request::parse) else {
        return Some((buf, Err(malformed())));
    };
    if req.is_websocket() {
        return Some((buf, Ok(req)));
    }
    let rest = buf.split_off(head_end + 4);
    let body = if req.is_chunked() {
        read_chunked(read, rest, max_body).await
    } else {
        read_sized(read, rest, req.content_length(), max_body).await
    };
    match body {
        Ok((body, next)) => {
            req.body = body;
            *pending = next;
            Some((buf, Ok(req)))
        }
        Err(BodyError::Eof) => None,
        Err(BodyError::Malformed) => Some((buf, Err(malformed()))),
        Err(BodyError::TooLarge) => Some((buf, Err(Reply::json(413, r#"{"error":"request body too large"}"#)))),
    }
}

fn malformed() -> Reply {
    Reply::json(400, r#"{"error":"malformed request"}"#)
}

/// Why a request body could not be read.
#[derive(Debug, PartialEq)]
enum BodyError {
    /// The client went away mid-body.
    Eof,
    Malformed,
    TooLarge,
}

/// Appends what one read returns to `buf`; the count read, `None` on an I/O error.
async fn fill<R: AsyncRead + Unpin>(read: &mut R, buf: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 4096];
    let n = read.read(&mut chunk).await.ok()?;
    buf.extend_from_slice(chunk.get(..n)?);
    Some(n)
}

/// Reads until `buf` holds at least `len` bytes.
async fn fill_to<R: AsyncRead + Unpin>(read: &mut R, buf: &mut Vec<u8>, len: usize) -> Result<(), BodyError> {
    while buf.len() < len {
        if fill(read, buf).await.unwrap_or(0) == 0 {
            return Err(BodyError::Eof);
        }
    }
    Ok(())
}

/// A `Content-Length` body and what was read past it; `body` holds what was read past the head.
async fn read_sized<R: AsyncRead + Unpin>(
    read: &mut R,
    mut body: Vec<u8>,
    len: usize,
    max_body: usize,
) -> Result<(Vec<u8>, Vec<u8>), BodyError> {
    if len > max_body {
        return Err(BodyError::TooLarge);
    }
    fill_to(read, &mut body, len).await?;
    let next = body.split_off(len);
    Ok((body, next))
}

/// A `Transfer-Encoding: chunked` body (RFC 9112 §7.1), decoded: size lines (extensions
/// ignored), data, the last chunk, trailers (dropped); and what was read past it. `pending`
/// holds what was read past the head.
async fn read_chunked<R: AsyncRead + Unpin>(
    read: &mut R,
    mut pending: Vec<u8>,
    max_body: usize,
) -> Result<(Vec<u8>, Vec<u8>), BodyError> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line = next_line(read, &mut pending, &mut at).await?;
        let size = line.split(';').next().map(str::trim).unwrap_or_default();
        let size = usize::from_str_radix(size, 16).map_err(|_| BodyError::Malformed)?;
        if size == 0 {
            while !next_line(read, &mut pending, &mut at).await?.is_empty() {}
            return Ok((body, pending.split_off(at)));
        }
        if body.len().saturating_add(size) > max_body {
            return Err(BodyError::TooLarge);
        }
        let end = at + size;
        fill_to(read, &mut pending, end + 2).await?;
        body.extend_from_slice(pending.get(at..end).ok_or(BodyError::Malformed)?);
        if pending.get(end..end + 2) != Some(b"\r\n") {
            return Err(BodyError::Malformed);
        }
        at = end + 2;
    }
}

/// The next CRLF-terminated line of `pending` from `at` (reading more as needed), without its
/// CRLF; `at` moves past it.
async fn next_line<R: AsyncRead + Unpin>(
    read: &mut R,
    pending: &mut Vec<u8>,
    at: &mut usize,
) -> Result<String, BodyError> {
    loop {
        let found = pending.get(*at..).and_then(|rest| rest.windows(2).position(|w| w == b"\r\n"));
        if let Some(i) = found {
            let line = pending.get(*at..*at + i).ok_or(BodyError::Malformed)?;
            let line = std::str::from_utf8(line).map_err(|_| BodyError::Malformed)?.to_string();
            *at += i + 2;
            return Ok(line);
        }
        if pending.len().saturating_sub(*at) > MAX_HEAD {
            return Err(BodyError::Malformed);
        }
        if fill(read, pending).await.unwrap_or(0) == 0 {
            return Err(BodyError::Eof);
        }
    }
}

/// Writes `r`; with `close`, says so and shuts the write side, else the connection stays open
/// for the client's next request (keep-alive, as the providers' HTTP/1.1 servers do).
pub(crate) async fn write_reply<W: AsyncWrite + Unpin>(write: &mut W, r: &Reply, close: bool) -> std::io::Result<()> {
    // RFC 9110 §8.6: a 204 or 304 has no body and no Content-Length.
    let bodyless = matches!(r.status, 204 | 304);
    let framing = if bodyless { String::new() } else { format!("Content-Length: {}", r.body.len()) };
    let mut out = head(r, &framing, close).into_bytes();
    if !bodyless {
        out.extend_from_slice(r.body.as_bytes());
    }
    write.write_all(&out).await?;
    end(write, close).await
}

async fn end<W: AsyncWrite + Unpin>(write: &mut W, close: bool) -> std::io::Result<()> {
    if close {
        write.shutdown().await
    } else {
        write.flush().await
    }
}

/// Writes `r`'s head, then `body` as chunks as they come (each in one write, so a client sees
/// every event as soon as it is produced), then the last chunk; `close` as for
/// [`write_reply`]. An error item returns at once: the body is left unfinished and the
/// connection drops.
pub(crate) async fn write_stream<W: AsyncWrite + Unpin>(
    write: &mut W,
    r: &Reply,
    mut body: crate::server::BodyStream,
    close: bool,
) -> std::io::Result<()> {
    use futures::StreamExt;
    write.write_all(head(r, "Transfer-Encoding: chunked", close).as_bytes()).await?;
    let mut framed = Vec::new(); // reused: size line, data, CRLF
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if chunk.is_empty() {
            continue; // an empty chunk would end the body
        }
        framed.clear();
        framed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        write.write_all(&framed).await?;
    }
    write.write_all(b"0\r\n\r\n").await?;
    end(write, close).await
}

/// Status line and headers of `r`, with `framing` (its length or transfer encoding, or none);
/// no `Content-Type` for an [`Reply::empty`]; `Connection: close` when the connection ends.
fn head(r: &Reply, framing: &str, close: bool) -> String {
    let reason = match r.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    if !r.content_type.is_empty() {
        head.push_str(&format!("Content-Type: {}\r\n", r.content_type));
    }
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !framing.is_empty() {
        head.push_str(&format!("{framing}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_keys() {
        let h = Request::parse(
            "GET /v1/speak?model=aura-2-thalia-en&sample_rate=16000 HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nAuthorization: token abc \r\n",
        )
        .unwrap();
        assert_eq!(h.path, "/v1/speak");
        assert_eq!(h.query_param("model").as_deref(), Some("aura-2-thalia-en"));
        assert_eq!(h.query_pairs().len(), 2);
        assert!(h.is_websocket());
        assert_eq!(h.header_key("authorization", "Token "), Some("abc"));
        assert_eq!(h.header_key("authorization", "Bearer "), None);
        assert!(Request::parse("").is_none());
    }

    #[tokio::test]
    async fn a_keep_alive_connection_carries_the_next_request() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        client
            .write_all(b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\nConnection: Close\r\n\r\n")
            .await
            .unwrap();
        let mut pending = Vec::new();
        let (_, first) = read(&mut server, &mut pending, MAX_BODY).await.unwrap();
        let first = first.unwrap();
        assert_eq!((first.path.as_str(), first.body.as_slice(), first.closes), ("/a", &b"hi"[..], false));
        let (_, second) = read(&mut server, &mut pending, MAX_BODY).await.unwrap();
        let second = second.unwrap();
        assert_eq!((second.path.as_str(), second.closes), ("/b", true), "read from what the first read past its body");
        assert!(Request::parse("GET / HTTP/1.0").unwrap().closes, "HTTP/1.0 closes by default");
    }

    #[tokio::test]
    async fn reads_a_body_split_across_reads() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let send = tokio::spawn(async move {
            client.write_all(b"POST /v2/live HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"a\":").await.unwrap();
            client.write_all(b"true}").await.unwrap();
            client
        });
        let (_, req) = read(&mut server, &mut Vec::new(), MAX_BODY).await.unwrap();
        let req = req.unwrap();
        assert_eq!((req.method.as_str(), req.body.as_slice()), ("POST", &b"{\"a\":true}"[..]));
        drop(send.await);
    }

    /// Reads `raw` (sent in 7-byte pieces, so every line and chunk straddles reads) with
    /// `max_body`.
    async fn read_all(raw: &'static [u8], max_body: usize) -> Option<Result<Request, Reply>> {
        let (mut client, mut server) = tokio::io::duplex(64);
        let send = tokio::spawn(async move {
            for piece in raw.chunks(7) {
                if client.write_all(piece).await.is_err() {
                    break; // the reader stopped early (a refusal)
                }
            } // dropping `client` is the end of input
        });
        let read = read(&mut server, &mut Vec::new(), max_body).await.map(|(_, req)| req);
        drop(server);
        drop(send.await);
        read
    }

    #[tokio::test]
    async fn reads_chunked_bodies() {
        let raw = b"POST /v1/chat HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{\"a\":\r\na\r\ntrue, \"b\":\r\n2\r\n1}\r\n0\r\nX-Trailer: t\r\n\r\n";
        let req = read_all(raw, MAX_BODY).await.unwrap().unwrap();
        assert_eq!(std::str::from_utf8(&req.body).unwrap(), r#"{"a":true, "b":1}"#);
        let bad = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
        assert_eq!(read_all(bad, MAX_BODY).await.unwrap().unwrap_err().status, 400);
        let short = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
        assert!(read_all(short, MAX_BODY).await.is_none(), "the client left mid-body");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413() {
        let sized = b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
        assert_eq!(read_all(sized, 10).await.unwrap().unwrap_err().status, 413);
        assert_eq!(read_all(sized, 11).await.unwrap().unwrap().body, b"hello world");
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
        assert_eq!(read_all(chunked, 10).await.unwrap().unwrap_err().status, 413);
        assert_eq!(read_all(chunked, 11).await.unwrap().unwrap().body, b"hello world");
    }
}
