//! The paced streaming body every API's stream is written with: each event is its own chunk,
//! written as it comes due, so time-to-first-token is measurable; a scripted cut drops the
//! connection mid-body. simkit's server ends the stream when the sim is dropped or the client
//! hangs up, and counts it open meanwhile.

use simkit::{BodyStream, Reply, Route};
use std::time::Duration;
use tokio::time::Instant;

/// One scheduled write: `Cut` drops the connection (no end marker, no closing chunk).
pub(crate) enum Frame {
    Data(Vec<u8>),
    Cut,
}

/// Token times: the first after `first_token_delay`, then one every `1 / tokens_per_sec`.
pub(crate) struct Pacer {
    at: Duration,
    interval: Duration,
    started: bool,
}

impl Pacer {
    pub(crate) fn new(first_token_delay: Duration, tokens_per_sec: f64) -> Self {
        let interval = if tokens_per_sec > 0.0 && tokens_per_sec.is_finite() {
            Duration::from_secs_f64(1.0 / tokens_per_sec)
        } else {
            Duration::ZERO
        };
        Self { at: first_token_delay, interval, started: false }
    }

    /// The time of the next token.
    pub(crate) fn next_token(&mut self) -> Duration {
        if self.started {
            self.at += self.interval;
        }
        self.started = true;
        self.at
    }

    /// The time of the last token handed out (or of the first, if none was): closing events
    /// follow it without a further gap.
    pub(crate) fn last(&self) -> Duration {
        self.at
    }
}

/// Schedules one frame per item (a token, an argument piece) at the pacer's times. A scripted
/// drop cuts the connection at item `drop_after` (or after the last); otherwise the time the
/// closing frames follow at is returned.
pub(crate) fn items<T>(
    frames: &mut Vec<(Duration, Frame)>,
    pacer: &mut Pacer,
    items: &[T],
    drop_after: Option<usize>,
    mut frame: impl FnMut(usize, &T) -> Frame,
) -> Option<Duration> {
    for (i, item) in items.iter().enumerate() {
        let at = pacer.next_token();
        if drop_after == Some(i) {
            frames.push((at, Frame::Cut));
            return None;
        }
        frames.push((at, frame(i, item)));
    }
    let at = pacer.last();
    if drop_after.is_some() {
        frames.push((at, Frame::Cut));
        return None;
    }
    Some(at)
}

/// `data: <json>` (with `event: <name>` first when the provider names its events).
pub(crate) fn sse(event: Option<&str>, data: &serde_json::Value) -> Vec<u8> {
    match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n").into_bytes(),
        None => format!("data: {data}\n\n").into_bytes(),
    }
}

/// The head of every SSE stream.
pub(crate) fn sse_head() -> Reply {
    Reply::with_type(200, "text/event-stream; charset=utf-8", "").header("cache-control", "no-cache")
}

/// The `text/event-stream` reply writing `frames`.
pub(crate) fn sse_stream(frames: Vec<(Duration, Frame)>) -> Route<()> {
    stream(sse_head(), frames)
}

/// `head`, then `frames` each at its offset from now.
pub(crate) fn stream(head: Reply, frames: Vec<(Duration, Frame)>) -> Route<()> {
    let start = Instant::now();
    let body = futures::stream::unfold(Some(frames.into_iter()), move |frames| async move {
        let mut frames = frames?;
        let (at, frame) = frames.next()?;
        tokio::time::sleep_until(start + at).await;
        match frame {
            Frame::Data(bytes) => Some((Ok(bytes), Some(frames))),
            Frame::Cut => Some((Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "scripted cut")), None)),
        }
    });
    Route::Stream(head, Box::pin(body) as BodyStream)
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
    fn items_are_paced_and_cut() {
        let data = |_: usize, t: &&str| Frame::Data(t.as_bytes().to_vec());
        let mut frames = Vec::new();
        let mut pacer = Pacer::new(Duration::from_millis(10), 100.0);
        let end = items(&mut frames, &mut pacer, &["a", "b"], None, data);
        assert_eq!(end, Some(Duration::from_millis(20)));
        assert_eq!(frames.iter().map(|(at, _)| at.as_millis()).collect::<Vec<_>>(), [10, 20]);
        for (drop_after, sent) in [(1, 1), (5, 2)] {
            let mut frames = Vec::new();
            let mut pacer = Pacer::new(Duration::ZERO, 0.0);
            assert_eq!(items(&mut frames, &mut pacer, &["a", "b"], Some(drop_after), data), None);
            assert_eq!(frames.len(), sent + 1);
            assert!(matches!(frames.last(), Some((_, Frame::Cut))));
        }
    }

    #[test]
    fn sse_framing() {
        let v = serde_json::json!({"a": 1});
        assert_eq!(sse(None, &v), b"data: {\"a\":1}\n\n");
        assert_eq!(sse(Some("ping"), &v), b"event: ping\ndata: {\"a\":1}\n\n");
    }
}
