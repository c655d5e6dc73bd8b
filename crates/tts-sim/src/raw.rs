//! A raw WebSocket client for the simulators' own tests: what the adapters never send.

use futures::StreamExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame as JSON, skipping binary and control frames; panics after 5 s or at the end.
pub(crate) async fn next_json(ws: &mut Client) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
}
