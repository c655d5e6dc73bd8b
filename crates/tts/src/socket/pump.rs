//! The one task that owns a provider socket: text in, audio/events out, usage at the end.
//! Each provider supplies a [`Dialect`] that spells our inputs and reads its messages.

use super::words::{Timeline, WordTimes};
use super::Ws;
use crate::{Alignment, TtsError, TtsEvent, TtsInput};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// After end of input, give up if the provider stays silent this long without finishing.
const EOS_IDLE: Duration = Duration::from_secs(10);
/// After a failed write, how long to wait for the close frame that explains it.
const SEND_FAIL_WAIT: Duration = Duration::from_secs(2);
/// Bound on the goodbye/cancel messages and our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What one provider message meant.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// s16le PCM; may end mid-sample (the pump carries the odd byte).
    Audio(Bytes),
    Words(WordTimes),
    /// Everything asked for since end of input is synthesized.
    Finished,
    /// The stream cannot go on.
    Fatal(TtsError),
}

/// One provider's spelling of the stream. Methods push wire messages into `out`.
pub(crate) trait Dialect: Send + 'static {
    fn text(&mut self, text: &str, out: &mut Vec<Message>);
    /// End of the agent's turn: generate what is buffered.
    fn flush(&mut self, out: &mut Vec<Message>);
    /// End of input. True when nothing is outstanding, so the stream is done at once.
    fn close(&mut self, out: &mut Vec<Message>) -> bool;
    /// After the provider finished: messages that end the session politely.
    fn goodbye(&mut self, out: &mut Vec<Message>);
    /// The session dropped the stream (barge-in): stop generating before we hang up.
    fn cancel(&mut self, out: &mut Vec<Message>);
    /// Reads one data frame (text or binary) into `out`.
    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>);
}

/// How driving ended, which decides the last messages sent.
enum Ending {
    Finished,
    Abandoned,
    Failed,
}

/// Runs until the provider finishes or fails, or the session drops the events receiver.
/// Always offers a final cumulative `Usage` before the events channel closes.
pub(crate) async fn run<D: Dialect>(
    mut ws: Ws,
    mut dialect: D,
    mut text: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) {
    let mut pump = Pump {
        events,
        chars: 0,
        carry: None,
        timeline: Timeline::default(),
        aligned: None,
        out: Vec::new(),
        incoming: Vec::new(),
    };
    let ending = pump.drive(&mut ws, &mut dialect, &mut text).await;
    pump.out.clear();
    match ending {
        Ending::Finished => dialect.goodbye(&mut pump.out),
        Ending::Abandoned => dialect.cancel(&mut pump.out),
        Ending::Failed => {}
    }
    let out = std::mem::take(&mut pump.out);
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        for m in out {
            ws.feed(m).await?;
        }
        ws.flush().await?;
        ws.close(None).await
    })
    .await;
    let _ = pump.events.send(TtsEvent::Usage { characters: pump.chars }).await;
}

struct Pump {
    events: mpsc::Sender<TtsEvent>,
    /// Billable characters: the caller's text as sent.
    chars: u64,
    /// A byte of a sample split across two audio messages.
    carry: Option<u8>,
    timeline: Timeline,
    /// Timings received but not yet attached to audio.
    aligned: Option<Alignment>,
    out: Vec<Message>,
    incoming: Vec<Incoming>,
}

#[derive(Clone, Copy, PartialEq)]
enum Draining {
    No,
    AfterEos,
    AfterSendFailure,
}

impl Pump {
    /// False when the session has dropped the receiver.
    async fn emit(&self, ev: TtsEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    async fn drive<D: Dialect>(&mut self, ws: &mut Ws, dialect: &mut D, text: &mut mpsc::Receiver<TtsInput>) -> Ending {
        let mut draining = Draining::No;
        let mut deadline = Instant::now();
        loop {
            tokio::select! {
                biased;
                () = self.events.closed() => return Ending::Abandoned,
                msg = ws.next() => {
                    if draining == Draining::AfterEos {
                        deadline = Instant::now() + EOS_IDLE;
                    }
                    let msg = match msg {
                        Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => m,
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) =
                                frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                            self.emit(TtsEvent::Error(TtsError::Closed { code, reason })).await;
                            return Ending::Failed;
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => {
                            self.emit(TtsEvent::Error(TtsError::Closed { code: 1006, reason: e.to_string() })).await;
                            return Ending::Failed;
                        }
                        None => {
                            self.emit(TtsEvent::Error(TtsError::Closed { code: 1006, reason: "connection lost".into() })).await;
                            return Ending::Failed;
                        }
                    };
                    dialect.parse(msg, &mut self.incoming);
                    if let Some(ending) = self.deliver().await {
                        return ending;
                    }
                }
                input = text.recv(), if draining == Draining::No => {
                    self.out.clear();
                    let (usage, eos) = match input {
                        Some(TtsInput::Text(s)) if s.is_empty() => continue,
                        Some(TtsInput::Text(s)) => {
                            self.chars += s.chars().count() as u64;
                            dialect.text(&s, &mut self.out);
                            (false, false)
                        }
                        Some(TtsInput::Flush) => {
                            dialect.flush(&mut self.out);
                            (true, false)
                        }
                        Some(TtsInput::Close) | None => (false, true),
                    };
                    let finished_now = eos && dialect.close(&mut self.out);
                    if !self.send_all(ws).await {
                        draining = Draining::AfterSendFailure;
                        deadline = Instant::now() + SEND_FAIL_WAIT;
                        continue;
                    }
                    if usage && !self.emit(TtsEvent::Usage { characters: self.chars }).await {
                        return Ending::Abandoned;
                    }
                    if finished_now {
                        return if self.emit(TtsEvent::Done).await { Ending::Finished } else { Ending::Abandoned };
                    }
                    if eos {
                        draining = Draining::AfterEos;
                        deadline = Instant::now() + EOS_IDLE;
                    }
                }
                () = tokio::time::sleep_until(deadline), if draining != Draining::No => {
                    let err = match draining {
                        Draining::AfterSendFailure => TtsError::Closed { code: 1006, reason: "send failed".into() },
                        _ => TtsError::Protocol("the provider did not finish after end of input".into()),
                    };
                    self.emit(TtsEvent::Error(err)).await;
                    return Ending::Failed;
                }
            }
        }
    }

    async fn send_all(&mut self, ws: &mut Ws) -> bool {
        if self.out.is_empty() {
            return true;
        }
        for m in self.out.drain(..) {
            if ws.feed(m).await.is_err() {
                return false;
            }
        }
        ws.flush().await.is_ok()
    }

    /// Emits what the last message meant; `Some` when the stream is over.
    async fn deliver(&mut self) -> Option<Ending> {
        let mut incoming = std::mem::take(&mut self.incoming);
        let mut ending = None;
        for inc in incoming.drain(..) {
            let ok = match inc {
                Incoming::Audio(pcm) => {
                    let pcm = self.whole_samples(pcm);
                    if pcm.is_empty() {
                        true
                    } else {
                        let alignment = self.aligned.take();
                        self.emit(TtsEvent::Audio { pcm, alignment }).await
                    }
                }
                Incoming::Words(w) => {
                    self.timeline.push(&w, self.aligned.get_or_insert_with(Alignment::default));
                    true
                }
                Incoming::Finished => {
                    // Timings that came after the last audio still belong to the stream.
                    if let Some(alignment) = self.aligned.take().filter(|a| !a.chars.is_empty()) {
                        self.emit(TtsEvent::Audio { pcm: Bytes::new(), alignment: Some(alignment) }).await;
                    }
                    ending = Some(if self.emit(TtsEvent::Done).await { Ending::Finished } else { Ending::Abandoned });
                    break;
                }
                Incoming::Fatal(e) => {
                    self.emit(TtsEvent::Error(e)).await;
                    ending = Some(Ending::Failed);
                    break;
                }
            };
            if !ok {
                ending = Some(Ending::Abandoned);
                break;
            }
        }
        incoming.clear();
        self.incoming = incoming;
        ending
    }

    /// Whole s16le samples only: an odd trailing byte waits for the next message.
    fn whole_samples(&mut self, pcm: Bytes) -> Bytes {
        if self.carry.is_none() && pcm.len().is_multiple_of(2) {
            return pcm;
        }
        let mut buf = Vec::with_capacity(pcm.len() + 1);
        buf.extend(self.carry.take());
        buf.extend_from_slice(&pcm);
        if !buf.len().is_multiple_of(2) {
            self.carry = buf.pop();
        }
        Bytes::from(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pump() -> Pump {
        let (events, _rx) = mpsc::channel(1);
        Pump {
            events,
            chars: 0,
            carry: None,
            timeline: Timeline::default(),
            aligned: None,
            out: Vec::new(),
            incoming: Vec::new(),
        }
    }

    #[test]
    fn odd_bytes_are_carried_into_the_next_message() {
        let mut p = pump();
        assert_eq!(&p.whole_samples(Bytes::from_static(&[1, 2, 3]))[..], &[1, 2]);
        assert_eq!(&p.whole_samples(Bytes::from_static(&[4, 5, 6]))[..], &[3, 4, 5, 6]);
        assert_eq!(&p.whole_samples(Bytes::from_static(&[7, 8]))[..], &[7, 8]);
        assert!(p.whole_samples(Bytes::from_static(&[9])).is_empty());
        assert_eq!(&p.whole_samples(Bytes::from_static(&[10]))[..], &[9, 10]);
    }
}
