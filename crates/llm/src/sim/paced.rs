//! A paced SSE response body shared by the simulators: each event is its own body frame, so
//! hyper flushes it on its own and time-to-first-token is measurable; a scripted cut aborts the
//! connection; dropping the sim ends every open stream.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// hyper discards its unflushed write buffer when a body fails; pausing before a cut lets it
/// flush the events already "sent", as on a real mid-stream drop.
const CUT_GRACE: Duration = Duration::from_millis(20);

/// One scheduled write: `Cut` aborts the connection (hyper drops it on a body error).
pub(super) enum Frame {
    Data(Bytes),
    Cut,
}

/// Token times: the first after `first_token_delay`, then one every `1 / tokens_per_sec`.
pub(super) struct Pacer {
    at: Duration,
    interval: Duration,
    started: bool,
}

impl Pacer {
    pub(super) fn new(first_token_delay: Duration, tokens_per_sec: f64) -> Self {
        let interval = if tokens_per_sec > 0.0 && tokens_per_sec.is_finite() {
            Duration::from_secs_f64(1.0 / tokens_per_sec)
        } else {
            Duration::ZERO
        };
        Self { at: first_token_delay, interval, started: false }
    }

    /// The time of the next token.
    pub(super) fn next_token(&mut self) -> Duration {
        if self.started {
            self.at += self.interval;
        }
        self.started = true;
        self.at
    }

    /// The time of the last token handed out (or of the first, if none was): closing events
    /// follow it without a further gap.
    pub(super) fn last(&self) -> Duration {
        self.at
    }
}

/// `data: <json>` (with `event: <name>` first when the provider names its events).
pub(super) fn sse(event: Option<&str>, data: &serde_json::Value) -> Bytes {
    match event {
        Some(name) => Bytes::from(format!("event: {name}\ndata: {data}\n\n")),
        None => Bytes::from(format!("data: {data}\n\n")),
    }
}

/// Counts a stream as open for as long as hyper holds its body.
struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    fn new(open: Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct State {
    frames: std::vec::IntoIter<(Duration, Frame)>,
    stop: CancellationToken,
    ended: bool,
    _open: OpenGuard,
}

/// The `text/event-stream` response writing `frames` at their offsets from now.
pub(super) fn response(frames: Vec<(Duration, Frame)>, stop: CancellationToken, open: Arc<AtomicUsize>) -> Response {
    let start = Instant::now();
    let state = State { frames: frames.into_iter(), stop, ended: false, _open: OpenGuard::new(open) };
    let body = futures::stream::unfold(state, move |mut st| async move {
        if st.ended {
            return None;
        }
        let (at, frame) = st.frames.next()?;
        tokio::select! {
            _ = tokio::time::sleep_until(start + at) => {}
            _ = st.stop.cancelled() => {
                st.ended = true;
                return Some((Err(cut("simulator stopped")), st));
            }
        }
        match frame {
            Frame::Data(bytes) => Some((Ok(bytes), st)),
            Frame::Cut => {
                tokio::time::sleep(CUT_GRACE).await;
                st.ended = true;
                Some((Err(cut("scripted connection drop")), st))
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        Body::from_stream(body),
    )
        .into_response()
}

fn cut(why: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_spacing() {
        let mut p = Pacer::new(Duration::from_millis(100), 10.0);
        assert_eq!(p.last(), Duration::from_millis(100));
        assert_eq!(p.next_token(), Duration::from_millis(100));
        assert_eq!(p.next_token(), Duration::from_millis(200));
        assert_eq!(p.last(), Duration::from_millis(200));
        let mut fast = Pacer::new(Duration::ZERO, 0.0);
        assert_eq!(fast.next_token(), Duration::ZERO);
        assert_eq!(fast.next_token(), Duration::ZERO);
    }

    #[test]
    fn sse_framing() {
        let v = serde_json::json!({"a": 1});
        assert_eq!(sse(None, &v), "data: {\"a\":1}\n\n");
        assert_eq!(sse(Some("ping"), &v), "event: ping\ndata: {\"a\":1}\n\n");
    }
}
