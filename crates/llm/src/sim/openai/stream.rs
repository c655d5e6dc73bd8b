//! The paced SSE body of a streaming completion, event for event like OpenAI's: a role chunk,
//! one chunk per token, a finish chunk, the usage chunk if asked for, `[DONE]`. Each event is
//! its own body frame, so hyper flushes it on its own and time-to-first-token is measurable.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const CUT_GRACE: Duration = Duration::from_millis(20);

pub(super) struct Plan {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub tokens: Vec<String>,
    pub finish_reason: &'static str,
    pub usage: Option<Value>,
    pub drop_after: Option<usize>,
    pub first_token_delay: Duration,
    pub tokens_per_sec: f64,
    pub stop: CancellationToken,
    /// Streams in flight; lets tests see that a cancelled client really hung up.
    pub open: Arc<AtomicUsize>,
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

/// One scheduled write: `Cut` aborts the connection (hyper drops it on a body error).
enum Frame {
    Data(Bytes),
    Cut,
}

impl Plan {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        event(&json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_sim",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
            "usage": null
        }))
    }

    /// Every frame with its offset from the start of the response.
    fn schedule(&self) -> Vec<(Duration, Frame)> {
        let interval = if self.tokens_per_sec > 0.0 && self.tokens_per_sec.is_finite() {
            Duration::from_secs_f64(1.0 / self.tokens_per_sec)
        } else {
            Duration::ZERO
        };
        let mut frames = Vec::with_capacity(self.tokens.len() + 4);
        frames.push((
            Duration::ZERO,
            Frame::Data(self.chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            )),
        ));
        let mut at = self.first_token_delay;
        for (i, token) in self.tokens.iter().enumerate() {
            if self.drop_after == Some(i) {
                frames.push((at, Frame::Cut));
                return frames;
            }
            frames.push((at, Frame::Data(self.chunk(json!({"content": token}), None))));
            at += interval;
        }
        if self.drop_after.is_some() {
            frames.push((at, Frame::Cut));
            return frames;
        }
        at = at.saturating_sub(interval);
        frames.push((
            at,
            Frame::Data(self.chunk(json!({}), Some(self.finish_reason))),
        ));
        if let Some(usage) = &self.usage {
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_sim",
                "choices": [],
                "usage": usage
            });
            frames.push((at, Frame::Data(event(&chunk))));
        }
        frames.push((at, Frame::Data(Bytes::from_static(b"data: [DONE]\n\n"))));
        frames
    }
}

fn event(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

pub(super) fn response(plan: Plan) -> Response {
    let start = Instant::now();
    let stop = plan.stop.clone();
    let frames = plan.schedule().into_iter();
    let state = State {
        frames,
        stop,
        ended: false,
        _open: OpenGuard::new(plan.open.clone()),
    };
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
                // hyper discards its unflushed write buffer when a body fails; pausing lets it
                // flush the tokens already "sent", as on a real mid-stream drop.
                tokio::time::sleep(CUT_GRACE).await;
                st.ended = true;
                Some((Err(cut("scripted connection drop")), st))
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

struct State {
    frames: std::vec::IntoIter<(Duration, Frame)>,
    stop: CancellationToken,
    ended: bool,
    _open: OpenGuard,
}

fn cut(why: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, why)
}
