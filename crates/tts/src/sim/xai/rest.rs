//! The REST side of the xAI simulator: `GET /v1/api-key`, answered on the WebSocket port so
//! one base URL serves both. A minimal HTTP/1.1 exchange, one request per connection.

use super::Shared;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const MAX_HEAD: usize = 8 * 1024;

/// Peeks at the request head, without consuming it, to tell a WebSocket upgrade from REST.
pub(super) async fn is_upgrade(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = vec![0u8; MAX_HEAD];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let head = buf.get(..n).unwrap_or_default();
        if let Some(end) = find_end(head) {
            let head = String::from_utf8_lossy(head.get(..end).unwrap_or_default()).to_ascii_lowercase();
            return Ok(head.lines().any(|l| l.starts_with("upgrade:") && l.contains("websocket")));
        }
        if n == buf.len() {
            return Ok(false);
        }
        // Partial head: peek returns at once while bytes are buffered, so wait for more.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn find_end(head: &[u8]) -> Option<usize> {
    head.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Reads one request head and answers it.
pub(super) async fn answer(mut stream: TcpStream, shared: &Shared) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while find_end(&buf).is_none() && buf.len() < MAX_HEAD {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let bearer = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.trim().strip_prefix("Bearer ").map(str::to_string));
    let (status, body) = match (method, path.split('?').next().unwrap_or_default()) {
        ("GET", "/v1/api-key") => match bearer {
            None => (
                "401 Unauthorized",
                serde_json::json!({"code": "Unauthenticated", "error": "Missing API key"}).to_string(),
            ),
            Some(key) if !shared.check_key(&key) => ("400 Bad Request", super::bad_key_body(&key)),
            Some(key) => ("200 OK", key_info(&key)),
        },
        _ => (
            "404 Not Found",
            serde_json::json!({"code": "Not found", "error": "No handler found for this path"}).to_string(),
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The documented fields of `GET /v1/api-key`, for an active key.
fn key_info(key: &str) -> String {
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    serde_json::json!({
        "redacted_api_key": format!("xai-****{tail}"),
        "user_id": "sim-user",
        "name": "simulated key",
        "create_time": "2026-01-01T00:00:00Z",
        "modify_time": "2026-01-01T00:00:00Z",
        "modified_by": "sim-user",
        "team_id": "sim-team",
        "acls": ["api-key:model:*", "api-key:endpoint:*"],
        "api_key_id": "sim-key",
        "team_blocked": false,
        "api_key_blocked": false,
        "api_key_disabled": false,
    })
    .to_string()
}
