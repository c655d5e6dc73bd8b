//! The task that reads one streaming response body and feeds the event channel.
//!
//! It ends at `[DONE]`, at the end of the body, on an error, or as soon as the receiver is
//! dropped (the body is then dropped, which closes or recycles the connection). Before ending on
//! its own it always sends exactly one `Usage` and then `Done` or `Error`.

use super::decoder::{Decoder, Step};
use crate::error::describe_transport;
use crate::sse::SseParser;
use crate::{LlmError, LlmEvent};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long to wait for the body's end after `[DONE]` before giving the connection up.
const DRAIN: Duration = Duration::from_millis(500);

enum End {
    /// `[DONE]` arrived.
    Done,
    /// The body ended without `[DONE]`.
    Eof,
    Failed(LlmError),
}

pub(super) async fn run(
    body: impl Stream<Item = reqwest::Result<Bytes>>,
    tx: mpsc::Sender<LlmEvent>,
    mut decoder: Decoder,
) {
    let mut body = std::pin::pin!(body);
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut out = Vec::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return,
            next = body.next() => next,
        };
        let mut end = match next {
            Some(Ok(bytes)) => parser
                .push(&bytes, |e| events.push(e))
                .err()
                .map(sse_failure),
            Some(Err(e)) => Some(End::Failed(LlmError::Http(describe_transport(&e)))),
            None => Some(
                parser
                    .finish(|e| events.push(e))
                    .err()
                    .map_or(End::Eof, sse_failure),
            ),
        };
        // Events parsed before a failure still count, and an earlier `[DONE]` or error wins.
        for ev in events.drain(..) {
            match decoder.data(&ev.data, &mut out) {
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
                // Reading to the end of the body (the closing chunk after `[DONE]`) lets the
                // connection go back to the pool; a dropped body would force a new TLS handshake.
                let drain = async { while let Some(Ok(_)) = body.next().await {} };
                let _ = tokio::time::timeout(DRAIN, drain).await;
            }
            return;
        }
    }
}

fn sse_failure(e: crate::sse::SseError) -> End {
    End::Failed(LlmError::Stream(e.to_string()))
}

async fn finish(end: End, mut decoder: Decoder, tx: &mpsc::Sender<LlmEvent>) {
    let mut out = Vec::new();
    decoder.close(!matches!(end, End::Failed(_)), &mut out);
    out.push(match end {
        End::Done => LlmEvent::Done {
            finish_reason: decoder.finish_reason().map(str::to_string),
        },
        End::Eof if decoder.finish_reason().is_some() => LlmEvent::Done {
            finish_reason: decoder.finish_reason().map(str::to_string),
        },
        End::Eof => LlmEvent::Error(LlmError::Stream("the stream ended before [DONE]".into())),
        End::Failed(e) => LlmEvent::Error(e),
    });
    for ev in out {
        if tx.send(ev).await.is_err() {
            return;
        }
    }
}
