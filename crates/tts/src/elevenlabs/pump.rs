//! The one task that owns an ElevenLabs socket: text in, audio/events out, usage at the end.

use super::wire;
use crate::{TtsError, TtsEvent, TtsInput};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// After EOS, give up if the provider stays silent this long without `isFinal`.
const EOS_IDLE: Duration = Duration::from_secs(10);
/// After a failed write, how long to wait for the close frame that explains it.
const SEND_FAIL_WAIT: Duration = Duration::from_secs(2);
/// Bound on sending our close frame when the session has gone (barge-in).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

const FLUSH: &str = r#"{"text":" ","flush":true}"#;
const EOS: &str = r#"{"text":""}"#;

/// Runs until the provider closes, the session drops the events receiver, or EOS times out.
/// Always offers a final cumulative `Usage` before the events channel closes.
pub(super) async fn run(mut ws: Ws, mut text: mpsc::Receiver<TtsInput>, events: mpsc::Sender<TtsEvent>) {
    let mut pump = Pump { events, chars: 0 };
    pump.drive(&mut ws, &mut text).await;
    // Dropping the stream must free the provider promptly; a closed socket makes this a no-op.
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
    let _ = pump.events.send(TtsEvent::Usage { characters: pump.chars }).await;
}

struct Pump {
    events: mpsc::Sender<TtsEvent>,
    /// Billable characters: the caller's text, not the BOS/flush spaces or appended separators.
    chars: u64,
}

/// Why input stopped: the deadline then means different things.
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

    async fn drive(&mut self, ws: &mut Ws, text: &mut mpsc::Receiver<TtsInput>) {
        let mut draining = Draining::No;
        let mut deadline = Instant::now();
        let mut reported = false;
        loop {
            tokio::select! {
                biased;
                () = self.events.closed() => return,
                msg = ws.next() => {
                    if draining == Draining::AfterEos {
                        deadline = Instant::now() + EOS_IDLE;
                    }
                    let Some(msg) = msg else {
                        if !reported {
                            self.emit(TtsEvent::Error(TtsError::Closed { code: 1006, reason: "connection lost".into() })).await;
                        }
                        return;
                    };
                    match msg {
                        Ok(Message::Text(t)) => match wire::parse(&t) {
                            Ok(inc) => {
                                if let Some(e) = inc.error {
                                    reported = true;
                                    if !self.emit(TtsEvent::Error(e)).await {
                                        return;
                                    }
                                }
                                if let Some((pcm, alignment)) = inc.audio {
                                    if !self.emit(TtsEvent::Audio { pcm, alignment }).await {
                                        return;
                                    }
                                }
                                if inc.is_final && !self.emit(TtsEvent::Done).await {
                                    return;
                                }
                            }
                            Err(e) => {
                                self.emit(TtsEvent::Error(e)).await;
                                return;
                            }
                        },
                        Ok(Message::Close(frame)) => {
                            let (code, reason) =
                                frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                            if code != 1000 && !reported {
                                self.emit(TtsEvent::Error(TtsError::Closed { code, reason })).await;
                            }
                            return;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            if !reported {
                                self.emit(TtsEvent::Error(TtsError::Closed { code: 1006, reason: e.to_string() })).await;
                            }
                            return;
                        }
                    }
                }
                input = text.recv(), if draining == Draining::No => {
                    let (wire_msg, usage, eos) = match input {
                        Some(TtsInput::Text(s)) if s.is_empty() => continue, // "" would end the stream
                        Some(TtsInput::Text(mut s)) => {
                            self.chars += s.chars().count() as u64;
                            if !s.ends_with(char::is_whitespace) {
                                s.push(' ');
                            }
                            (serde_json::json!({"text": s, "try_trigger_generation": true}).to_string(), false, false)
                        }
                        Some(TtsInput::Flush) => (FLUSH.to_string(), true, false),
                        Some(TtsInput::Close) | None => (EOS.to_string(), false, true),
                    };
                    if ws.send(Message::text(wire_msg)).await.is_err() {
                        draining = Draining::AfterSendFailure;
                        deadline = Instant::now() + SEND_FAIL_WAIT;
                        continue;
                    }
                    if usage && !self.emit(TtsEvent::Usage { characters: self.chars }).await {
                        return;
                    }
                    if eos {
                        draining = Draining::AfterEos;
                        deadline = Instant::now() + EOS_IDLE;
                    }
                }
                () = tokio::time::sleep_until(deadline), if draining != Draining::No => {
                    let err = match draining {
                        Draining::AfterSendFailure => TtsError::Closed { code: 1006, reason: "send failed".into() },
                        _ => TtsError::Protocol("no isFinal after end of stream".into()),
                    };
                    if !reported {
                        self.emit(TtsEvent::Error(err)).await;
                    }
                    return;
                }
            }
        }
    }
}
