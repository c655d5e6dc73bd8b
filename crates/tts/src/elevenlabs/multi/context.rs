//! One stream's side of a context: the session's text to the socket's driver, the context's
//! events back, usage (characters sent) at the end.

use super::{Cmd, Slot};
use crate::{TtsError, TtsEvent, TtsInput};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Runs until the context ends (`Done` or an error from the driver) or the session drops its
/// events (barge-in); either way the driver is told to forget the context, the slot is freed,
/// and the last event is `Usage`.
pub(super) async fn run(
    slot: Slot,
    id: Arc<str>,
    mut ctx: mpsc::Receiver<TtsEvent>,
    mut text: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) {
    let cmds = slot.cmds();
    let mut chars = 0u64;
    let mut input_ended = false;
    loop {
        tokio::select! {
            biased;
            // Barge-in: `Forget` below closes this context only; the socket stays for the next turn.
            () = events.closed() => break,
            ev = ctx.recv() => {
                let ev = ev.unwrap_or_else(|| TtsEvent::Error(TtsError::Closed { code: 1006, reason: "connection lost".into() }));
                let last = matches!(ev, TtsEvent::Done | TtsEvent::Error(_));
                if events.send(ev).await.is_err() || last {
                    break;
                }
            }
            input = text.recv(), if !input_ended => {
                let input = match input {
                    Some(TtsInput::Text(s)) if s.is_empty() => continue, // "" would only keep alive
                    Some(TtsInput::Text(s)) => {
                        chars += s.chars().count() as u64;
                        TtsInput::Text(s)
                    }
                    Some(TtsInput::Flush) => TtsInput::Flush,
                    Some(TtsInput::Close) | None => {
                        input_ended = true;
                        TtsInput::Close
                    }
                };
                let flushed = matches!(input, TtsInput::Flush);
                if cmds.send(Cmd::Input { id: id.clone(), input }).await.is_err() {
                    input_ended = true; // the driver is gone; `ctx` says why
                }
                if flushed && events.send(TtsEvent::Usage { characters: chars }).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = cmds.send(Cmd::Forget(id)).await;
    drop(slot);
    let _ = events.send(TtsEvent::Usage { characters: chars }).await;
}
