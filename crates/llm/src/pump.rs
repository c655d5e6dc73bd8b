//! The task that reads one streaming response body and feeds the event channel, shared by every
//! provider: a [`Framer`] cuts the body into payloads (SSE events, or AWS event-stream messages
//! for Bedrock) and a [`Decode`] turns that provider's payloads into events.
//!
//! It ends at the provider's end marker (`[DONE]`, `message_stop`), at the end of the body, on
//! an error, or as soon as the receiver is dropped (the body is then dropped, which closes or
//! recycles the connection). Before ending on its own it always sends exactly one `Usage` and
//! then `Done` or `Error`.

use crate::error::describe_transport;
use crate::http::{self, Refusal};
use crate::sse::{SseEvent, SseParser};
use crate::{LlmError, LlmEvent};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::ACCEPT;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Events buffered between the reader task and the consumer; a slow consumer back-pressures
/// the HTTP body instead of growing memory.
const EVENTS: usize = 64;

/// Sends a streaming request asking for SSE and starts reading it with `decoder`; a refusal
/// comes back through the provider's `refused` instead, before any event.
pub(crate) async fn start_sse(
    req: reqwest::RequestBuilder,
    refused: fn(Refusal) -> LlmError,
    decoder: impl Decode,
) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    let resp = http::send(req.header(ACCEPT, "text/event-stream")).await?;
    if !resp.status().is_success() {
        return Err(refused(Refusal::read(resp).await));
    }
    Ok(spawn(resp, decoder))
}

/// Starts reading an accepted SSE response in its own task (in the caller's span).
pub(crate) fn spawn(resp: reqwest::Response, decoder: impl Decode) -> mpsc::Receiver<LlmEvent> {
    spawn_framed(resp, SseParser::new(), decoder)
}

/// Starts reading an accepted streaming response framed by `framer`.
pub(crate) fn spawn_framed(
    resp: reqwest::Response,
    framer: impl Framer,
    decoder: impl Decode,
) -> mpsc::Receiver<LlmEvent> {
    let (tx, rx) = mpsc::channel(EVENTS);
    tokio::spawn(run_framed(resp.bytes_stream(), tx, framer, decoder).in_current_span());
    rx
}

/// Cuts a body into payloads; chunk boundaries need not match payload boundaries.
pub(crate) trait Framer: Send + 'static {
    /// Feeds bytes, appending every payload they complete (in order) to `out`. Payloads
    /// completed before an error are still appended.
    fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LlmError>;
    /// The body ended: whatever the buffered bytes still complete.
    fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LlmError>;
}

impl Framer for SseParser {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        SseParser::push(self, chunk, |e| out.push(e)).map_err(sse_error)
    }

    fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        SseParser::finish(self, |e| out.push(e)).map_err(sse_error)
    }
}

fn sse_error(e: crate::sse::SseError) -> LlmError {
    LlmError::Stream(e.to_string())
}

/// How long to wait for the body's end after `[DONE]` before giving the connection up.
const DRAIN: Duration = Duration::from_millis(500);

/// What the stream does after a payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    /// The provider's end marker arrived.
    Done,
}

/// One provider's stream decoding.
pub(crate) trait Decode: Send + 'static {
    /// Handles one SSE payload, pushing the events it yields onto `out`.
    fn data(&mut self, data: &str, out: &mut Vec<LlmEvent>) -> Result<Step, LlmError>;
    /// Handles one payload with its event name (SSE `event:`, event-stream `:event-type`); only
    /// providers whose payloads do not name themselves need more than `data`.
    fn event(&mut self, _event: Option<&str>, data: &str, out: &mut Vec<LlmEvent>) -> Result<Step, LlmError> {
        self.data(data, out)
    }
    /// The closing events: tool calls still pending (only if the stream `completed`; after an
    /// error their arguments may be cut), then the one `Usage`, estimated if none was reported.
    fn close(&mut self, completed: bool, out: &mut Vec<LlmEvent>);
    /// The provider's finish/stop reason, once sent: a body ending after it ended normally.
    fn finish_reason(&self) -> Option<&str>;
}

/// The closing `Usage`: the provider's `(input, output)` when it reported them, otherwise the
/// conservative estimate from the prompt and the characters generated.
pub(crate) fn usage_or_estimate(reported: Option<(u64, u64)>, input_estimate: u64, output_chars: usize) -> LlmEvent {
    match reported {
        Some((input_tokens, output_tokens)) => LlmEvent::Usage { input_tokens, output_tokens, estimated: false },
        None => LlmEvent::Usage {
            input_tokens: input_estimate,
            output_tokens: crate::estimate::estimate_output_tokens(output_chars),
            estimated: true,
        },
    }
}

/// Feeds `payloads` to a decoder until one ends or fails, then closes it as the pump would.
#[cfg(test)]
pub(crate) fn decode_all(d: &mut impl Decode, payloads: &[&str]) -> (Vec<LlmEvent>, Result<Step, LlmError>) {
    let mut out = Vec::new();
    let mut last = Ok(Step::Continue);
    for p in payloads {
        last = d.data(p, &mut out);
        if !matches!(last, Ok(Step::Continue)) {
            break;
        }
    }
    d.close(matches!(last, Ok(Step::Done)), &mut out);
    (out, last)
}

enum End {
    /// The end marker arrived.
    Done,
    /// The body ended without an end marker.
    Eof,
    Failed(LlmError),
}

pub(crate) async fn run_framed(
    body: impl Stream<Item = reqwest::Result<Bytes>>,
    tx: mpsc::Sender<LlmEvent>,
    mut parser: impl Framer,
    mut decoder: impl Decode,
) {
    let mut body = std::pin::pin!(body);
    let mut events = Vec::new();
    let mut out = Vec::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return,
            next = body.next() => next,
        };
        let mut end = match next {
            Some(Ok(bytes)) => parser.push(&bytes, &mut events).err().map(End::Failed),
            Some(Err(e)) => Some(End::Failed(LlmError::Http(describe_transport(&e)))),
            None => Some(parser.finish(&mut events).err().map_or(End::Eof, End::Failed)),
        };
        // Events parsed before a failure still count, and an earlier end marker or error wins.
        for ev in events.drain(..) {
            match decoder.event(ev.event.as_deref(), &ev.data, &mut out) {
                Ok(Step::Continue) => {}
                Ok(Step::Done) => {
                    end = Some(End::Done);
                    break;
                }
                Err(e) => {
                    end = Some(End::Failed(e));
                    break;
                }
            }
        }
        for ev in out.drain(..) {
            if tx.send(ev).await.is_err() {
                return;
            }
        }
        if let Some(end) = end {
            let clean = matches!(end, End::Done);
            finish(end, decoder, &tx).await;
            drop(tx); // the consumer sees the end now, not after the drain
            if clean {
                // Reading to the end of the body (the closing chunk after the marker) lets the
                // connection go back to the pool; a dropped body would force a new TLS handshake.
                let drain = async { while let Some(Ok(_)) = body.next().await {} };
                let _ = tokio::time::timeout(DRAIN, drain).await;
            }
            return;
        }
    }
}

async fn finish(end: End, mut decoder: impl Decode, tx: &mpsc::Sender<LlmEvent>) {
    let mut out = Vec::new();
    decoder.close(!matches!(end, End::Failed(_)), &mut out);
    out.push(match end {
        End::Done => LlmEvent::Done { finish_reason: decoder.finish_reason().map(str::to_string) },
        End::Eof if decoder.finish_reason().is_some() => {
            LlmEvent::Done { finish_reason: decoder.finish_reason().map(str::to_string) }
        }
        End::Eof => LlmEvent::Error(LlmError::Stream("the stream ended before the provider finished".into())),
        End::Failed(e) => LlmEvent::Error(e),
    });
    for ev in out {
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}
