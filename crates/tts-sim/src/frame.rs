//! Reading client frames and going away, the same in every simulator's socket loop.

use futures::StreamExt;
use simkit::{Message, Ws};

/// The next text frame; `None` once the client has gone. Other frames (binary, pings) are
/// skipped. Cancel-safe, for `select!`.
pub(crate) async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Some(t.to_string()),
            Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// The simulator is stopping: close as a provider going away does (1001).
pub(crate) async fn going_away(ws: &mut Ws) {
    simkit::close(ws, 1001, "simulator stopped").await
}
