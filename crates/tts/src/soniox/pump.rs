//! The one task that owns a Soniox socket: text in, audio/events out, usage at the end.

use super::{wire, StreamSettings};
use crate::{TtsError, TtsEvent, TtsInput};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Soniox closes idle sockets after 20–30 s; pipecat pings every 20 s.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(20);
/// After `Close`, give up if the provider stays silent this long without `terminated`.
const END_IDLE: Duration = Duration::from_secs(10);
const SEND_FAIL_WAIT: Duration = Duration::from_secs(2);
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// One Soniox stream on the socket, until its `terminated`.
struct Live {
    id: String,
    has_text: bool,
    /// `text_end` or `cancel` sent: no more text goes to it.
    ending: bool,
    /// Stream time (ms) at its first audio: Soniox timings restart per stream.
    offset_ms: Option<u32>,
}

pub(super) async fn run(
    mut ws: Ws,
    mut text: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
    settings: StreamSettings,
    prefix: String,
) {
    let first = Live { id: format!("{prefix}-0"), has_text: false, ending: false, offset_ms: None };
    let mut pump = Pump { events, settings, prefix, next: 1, live: vec![first], chars: 0, samples: 0 };
    pump.drive(&mut ws, &mut text).await;
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
    let _ = pump.events.send(TtsEvent::Usage { characters: pump.chars }).await;
}

struct Pump {
    events: mpsc::Sender<TtsEvent>,
    settings: StreamSettings,
    prefix: String,
    next: u32,
    live: Vec<Live>,
    /// Billable characters: the `text` of every text message.
    chars: u64,
    /// Samples delivered: the stream clock.
    samples: u64,
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

    /// The stream taking text, opening one (config message first) if the last has ended.
    fn current(&mut self, out: &mut Vec<String>) -> Result<&mut Live, TtsError> {
        if self.live.last().is_none_or(|l| l.ending) {
            let id = format!("{}-{}", self.prefix, self.next);
            self.next += 1;
            out.push(self.settings.config(&id)?);
            self.live.push(Live { id, has_text: false, ending: false, offset_ms: None });
        }
        self.live.last_mut().ok_or_else(|| TtsError::Protocol("no open stream".into()))
    }

    /// Ends the open stream: `text_end` after text, `cancel` when it never got any.
    fn end_current(&mut self, out: &mut Vec<String>) {
        if let Some(l) = self.live.last_mut().filter(|l| !l.ending) {
            l.ending = true;
            out.push(if l.has_text { wire::text(&l.id, "", true) } else { wire::cancel(&l.id) });
        }
    }

    /// False when the stream should end.
    async fn on_message(&mut self, inc: wire::Incoming, draining: Draining) -> bool {
        if let Some(e) = inc.error {
            self.emit(TtsEvent::Error(e)).await;
            return false;
        }
        let Some(idx) = inc.stream_id.as_deref().and_then(|id| self.live.iter().position(|l| l.id == id)) else {
            return true; // a stream already forgotten
        };
        if let Some((pcm, timing)) = inc.audio {
            let now_ms =
                u32::try_from(self.samples * 1000 / u64::from(self.settings.sample_rate.max(1))).unwrap_or(u32::MAX);
            let offset = match self.live.get_mut(idx) {
                Some(l) => *l.offset_ms.get_or_insert(now_ms),
                None => now_ms,
            };
            let alignment = timing.map(|mut al| {
                al.start_ms.iter_mut().for_each(|t| *t = t.saturating_add(offset));
                al
            });
            if !pcm.is_empty() || alignment.is_some() {
                self.samples += pcm.len() as u64 / 2;
                if !self.emit(TtsEvent::Audio { pcm, alignment }).await {
                    return false;
                }
            }
        }
        if inc.terminated {
            let ended = self.live.remove(idx);
            if ended.has_text && !self.live.iter().any(|l| l.has_text) && !self.emit(TtsEvent::Done).await {
                return false;
            }
            if draining == Draining::AfterClose && self.live.is_empty() {
                return false;
            }
        }
        true
    }

    async fn drive(&mut self, ws: &mut Ws, text: &mut mpsc::Receiver<TtsInput>) {
        let mut draining = Draining::No;
        let mut deadline = Instant::now();
        let mut last_sent = Instant::now();
        let mut out = Vec::with_capacity(2);
        loop {
            tokio::select! {
                biased;
                // Barge-in: closing the socket ends its streams; no cancel round trip needed.
                () = self.events.closed() => return,
                msg = ws.next() => {
                    if draining == Draining::AfterClose {
                        deadline = Instant::now() + END_IDLE;
                    }
                    let keep_going = match msg {
                        Some(Ok(Message::Text(t))) => match wire::parse(&t) {
                            Ok(inc) => self.on_message(inc, draining).await,
                            Err(e) => {
                                self.emit(TtsEvent::Error(e)).await;
                                false
                            }
                        },
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) =
                                frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                            if code != 1000 || !self.live.is_empty() {
                                self.emit(TtsEvent::Error(TtsError::Closed { code, reason })).await;
                            }
                            false
                        }
                        Some(Ok(_)) => true,
                        Some(Err(e)) => {
                            self.emit(TtsEvent::Error(TtsError::Closed { code: 1006, reason: e.to_string() })).await;
                            false
                        }
                        None => {
                            self.emit(TtsEvent::Error(TtsError::Closed { code: 1006, reason: "connection lost".into() })).await;
                            false
                        }
                    };
                    if !keep_going {
                        return;
                    }
                }
                input = text.recv(), if draining == Draining::No => {
                    out.clear();
                    let mut usage = false;
                    let mut close = false;
                    match input {
                        Some(TtsInput::Text(s)) if s.is_empty() => continue,
                        Some(TtsInput::Text(s)) => {
                            let stream = match self.current(&mut out) {
                                Ok(l) => l,
                                Err(e) => {
                                    self.emit(TtsEvent::Error(e)).await;
                                    return;
                                }
                            };
                            stream.has_text = true;
                            out.push(wire::text(&stream.id, &s, false));
                            self.chars += s.chars().count() as u64;
                        }
                        Some(TtsInput::Flush) => {
                            usage = true;
                            if self.live.last().is_some_and(|l| l.has_text) {
                                self.end_current(&mut out);
                            }
                        }
                        Some(TtsInput::Close) | None => {
                            close = true;
                            self.end_current(&mut out);
                        }
                    }
                    let mut failed = false;
                    for m in out.drain(..) {
                        if ws.send(Message::text(m)).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    last_sent = Instant::now();
                    if failed {
                        draining = Draining::AfterSendFailure;
                        deadline = Instant::now() + SEND_FAIL_WAIT;
                        continue;
                    }
                    if usage && !self.emit(TtsEvent::Usage { characters: self.chars }).await {
                        return;
                    }
                    if close {
                        if self.live.is_empty() {
                            return;
                        }
                        draining = Draining::AfterClose;
                        deadline = Instant::now() + END_IDLE;
                    }
                }
                () = tokio::time::sleep_until(last_sent + KEEP_ALIVE_EVERY), if draining == Draining::No => {
                    if ws.send(Message::text(wire::KEEP_ALIVE)).await.is_err() {
                        draining = Draining::AfterSendFailure;
                        deadline = Instant::now() + SEND_FAIL_WAIT;
                    }
                    last_sent = Instant::now();
                }
                () = tokio::time::sleep_until(deadline), if draining != Draining::No => {
                    let err = match draining {
                        Draining::AfterSendFailure => TtsError::Closed { code: 1006, reason: "send failed".into() },
                        _ => TtsError::Protocol("no terminated after text_end".into()),
                    };
                    self.emit(TtsEvent::Error(err)).await;
                    return;
                }
            }
        }
    }
}
