//! The one task that owns an xAI socket: text in, audio/events out, usage at the end.

use super::wire::{self, Incoming};
use crate::{Alignment, TtsError, TtsEvent, TtsInput};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// After the last `text.done`, give up if the provider stays silent this long.
const DONE_IDLE: Duration = Duration::from_secs(10);
/// After a failed write, how long to wait for the close frame that explains it.
const SEND_FAIL_WAIT: Duration = Duration::from_secs(2);
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Runs until every flushed utterance is voiced after `Close`, the provider fails, or the
/// session drops the events receiver. Always offers a final cumulative `Usage`.
pub(super) async fn run(mut ws: Ws, mut text: mpsc::Receiver<TtsInput>, events: mpsc::Sender<TtsEvent>, rate: u32) {
    let mut pump = Pump {
        events,
        chars: 0,
        rate: u64::from(rate.max(1)),
        samples: 0,
        utterance_ms: 0,
        timing: None,
        unflushed: false,
        outstanding: 0,
    };
    pump.drive(&mut ws, &mut text).await;
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
    let _ = pump.events.send(TtsEvent::Usage { characters: pump.chars }).await;
}

struct Pump {
    events: mpsc::Sender<TtsEvent>,
    /// Billable characters: every `text.delta` sent.
    chars: u64,
    rate: u64,
    /// Samples delivered so far: the clock that makes utterance-relative timings stream-relative.
    samples: u64,
    /// Stream time at which the current utterance's audio began.
    utterance_ms: u64,
    /// Timings that arrived without audio, held for the next audio chunk.
    timing: Option<Alignment>,
    /// Text sent since the last `text.done`.
    unflushed: bool,
    /// `text.done`s not yet answered by `audio.done`.
    outstanding: u32,
}

#[derive(Clone, Copy, PartialEq)]
enum Draining {
    No,
    AfterClose,
    AfterSendFailure,
}

impl Pump {
    async fn emit(&self, ev: TtsEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    /// Shifts utterance-relative timings onto the stream clock and queues them.
    fn add_timing(&mut self, mut al: Alignment) {
        let offset = u32::try_from(self.utterance_ms).unwrap_or(u32::MAX);
        for t in &mut al.start_ms {
            *t = t.saturating_add(offset);
        }
        match &mut self.timing {
            Some(held) => {
                held.chars.extend(al.chars);
                held.start_ms.extend(al.start_ms);
                held.duration_ms.extend(al.duration_ms);
            }
            None => self.timing = Some(al),
        }
    }

    /// False when the stream should end: session gone, provider error, or all voiced after `Close`.
    async fn on_message(&mut self, inc: Incoming, draining: Draining) -> bool {
        match inc {
            Incoming::Audio { pcm, timing } => {
                if let Some(al) = timing {
                    self.add_timing(al);
                }
                if pcm.is_empty() {
                    return true;
                }
                self.samples += pcm.len() as u64 / 2;
                let alignment = self.timing.take();
                self.emit(TtsEvent::Audio { pcm, alignment }).await
            }
            Incoming::Done => {
                if let Some(alignment) = self.timing.take() {
                    // Timings that trailed the audio: deliver them before the turn ends.
                    if !self.emit(TtsEvent::Audio { pcm: Bytes::new(), alignment: Some(alignment) }).await {
                        return false;
                    }
                }
                self.utterance_ms = self.samples * 1000 / self.rate;
                self.outstanding = self.outstanding.saturating_sub(1);
                if self.outstanding > 0 || self.unflushed {
                    return true;
                }
                self.emit(TtsEvent::Done).await && draining != Draining::AfterClose
            }
            Incoming::Ignored => true,
            Incoming::Error(e) => {
                self.emit(TtsEvent::Error(e)).await;
                false
            }
        }
    }

    async fn drive(&mut self, ws: &mut Ws, text: &mut mpsc::Receiver<TtsInput>) {
        let mut draining = Draining::No;
        let mut deadline = Instant::now();
        loop {
            tokio::select! {
                biased;
                () = self.events.closed() => return,
                msg = ws.next() => {
                    if draining == Draining::AfterClose {
                        deadline = Instant::now() + DONE_IDLE;
                    }
                    let keep_going = match msg {
                        Some(Ok(Message::Text(t))) => match wire::parse(&t) {
                            Ok(inc) => self.on_message(inc, draining).await,
                            Err(e) => {
                                self.emit(TtsEvent::Error(e)).await;
                                false
                            }
                        },
                        Some(Ok(Message::Binary(_))) => {
                            tracing::debug!("xai: unexpected binary frame ignored");
                            true
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) =
                                frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                            if code != 1000 {
                                self.emit(TtsEvent::Error(TtsError::Closed { code, reason })).await;
                            }
                            return;
                        }
                        Some(Ok(_)) => true,
                        Some(Err(e)) => {
                            self.emit(TtsEvent::Error(TtsError::Closed { code: 1006, reason: e.to_string() })).await;
                            return;
                        }
                        None => {
                            self.emit(TtsEvent::Error(TtsError::Closed { code: 1006, reason: "connection lost".into() })).await;
                            return;
                        }
                    };
                    if !keep_going {
                        return;
                    }
                }
                input = text.recv(), if draining == Draining::No => {
                    let mut usage = false;
                    let mut close = false;
                    let wire_msg = match input {
                        Some(TtsInput::Text(s)) if s.is_empty() => continue,
                        Some(TtsInput::Text(s)) => {
                            self.chars += s.chars().count() as u64;
                            self.unflushed = true;
                            Some(wire::text_delta(&s))
                        }
                        Some(TtsInput::Flush) => {
                            usage = true;
                            self.take_flush()
                        }
                        Some(TtsInput::Close) | None => {
                            close = true;
                            self.take_flush()
                        }
                    };
                    if let Some(m) = wire_msg {
                        if ws.send(Message::text(m)).await.is_err() {
                            draining = Draining::AfterSendFailure;
                            deadline = Instant::now() + SEND_FAIL_WAIT;
                            continue;
                        }
                    }
                    if usage && !self.emit(TtsEvent::Usage { characters: self.chars }).await {
                        return;
                    }
                    if close {
                        if self.outstanding == 0 {
                            return;
                        }
                        draining = Draining::AfterClose;
                        deadline = Instant::now() + DONE_IDLE;
                    }
                }
                () = tokio::time::sleep_until(deadline), if draining != Draining::No => {
                    let err = match draining {
                        Draining::AfterSendFailure => TtsError::Closed { code: 1006, reason: "send failed".into() },
                        _ => TtsError::Protocol("no audio.done after text.done".into()),
                    };
                    self.emit(TtsEvent::Error(err)).await;
                    return;
                }
            }
        }
    }

    /// `text.done` if text is waiting for it; an empty flush sends nothing.
    fn take_flush(&mut self) -> Option<String> {
        if !std::mem::replace(&mut self.unflushed, false) {
            return None;
        }
        self.outstanding += 1;
        Some(wire::TEXT_DONE.to_string())
    }
}
