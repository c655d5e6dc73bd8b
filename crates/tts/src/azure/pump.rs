//! The one task that owns an Azure synthesis socket: text is cut into sentences, each sentence is
//! one request (synthesis.context + ssml) answered by turn.start / response / audio… / turn.end.
//! The SDK runs one request at a time per connection, and so does this pump.

use super::wire;
use crate::{TtsError, TtsEvent, TtsInput};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Waiting on the service this long (no message while a request is open) ends the stream.
const IDLE: Duration = Duration::from_secs(10);
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// A sentence shorter than this waits for more text (keeps "Dr." or "1." from being cut alone).
const MIN_SENTENCE_CHARS: usize = 12;

pub(super) struct Opts {
    pub voice: String,
    pub output_format: &'static str,
}

/// The request the service is answering.
struct InFlight {
    request_id: String,
    /// From the `response` message; audio frames of other streams are not ours.
    stream_id: Option<String>,
}

struct Pump {
    events: mpsc::Sender<TtsEvent>,
    opts: Opts,
    /// Text not yet cut into a sentence.
    buffer: String,
    queue: VecDeque<String>,
    in_flight: Option<InFlight>,
    config_sent: bool,
    /// A flush (or close) asked for `Done` once everything queued has been spoken.
    done_owed: bool,
    /// Text was queued since the last flush, so closing owes a `Done` too.
    unflushed: bool,
    eos: bool,
    /// Characters of text sent in SSML requests (markup excluded): Azure's billing unit.
    chars: u64,
    /// Odd trailing byte of the previous audio frame, so every event holds whole samples.
    odd: Option<u8>,
    text: String,
}

/// Runs until all text is spoken after `Close`, the service fails, or the session drops the
/// events receiver (barge-in). Always offers a final cumulative `Usage`.
pub(super) async fn run(mut ws: Ws, mut input: mpsc::Receiver<TtsInput>, events: mpsc::Sender<TtsEvent>, opts: Opts) {
    let mut p = Pump {
        events,
        opts,
        buffer: String::new(),
        queue: VecDeque::new(),
        in_flight: None,
        config_sent: false,
        done_owed: false,
        unflushed: false,
        eos: false,
        chars: 0,
        odd: None,
        text: String::new(),
    };
    if let Err(e) = p.drive(&mut ws, &mut input).await {
        let _ = p.events.send(TtsEvent::Error(e)).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
    let _ = p.events.send(TtsEvent::Usage { characters: p.chars }).await;
}

impl Pump {
    async fn drive(&mut self, ws: &mut Ws, input: &mut mpsc::Receiver<TtsInput>) -> Result<(), TtsError> {
        let mut deadline = Instant::now() + IDLE;
        loop {
            if self.eos && self.in_flight.is_none() && self.queue.is_empty() {
                return Ok(());
            }
            tokio::select! {
                biased;
                () = self.events.closed() => return Ok(()),
                msg = ws.next() => {
                    deadline = Instant::now() + IDLE;
                    match msg {
                        Some(Ok(Message::Text(t))) => {
                            if !self.on_text(ws, &t).await? {
                                return Ok(());
                            }
                        }
                        Some(Ok(Message::Binary(frame))) => {
                            if !self.on_audio(frame).await {
                                return Ok(());
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) =
                                frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                            if code != 1000 || self.in_flight.is_some() || !self.queue.is_empty() {
                                return Err(TtsError::Closed { code, reason });
                            }
                            return Ok(());
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(TtsError::Closed { code: 1006, reason: e.to_string() }),
                        None => return Err(TtsError::Closed { code: 1006, reason: "connection lost".into() }),
                    }
                }
                inp = input.recv(), if !self.eos => {
                    match inp {
                        Some(TtsInput::Text(s)) => {
                            self.buffer.push_str(&s);
                            while let Some(cut) = sentence_end(&self.buffer) {
                                let sentence: String = self.buffer.drain(..cut).collect();
                                self.queue.push_back(sentence);
                                self.unflushed = true;
                            }
                        }
                        Some(TtsInput::Flush) => {
                            self.take_rest();
                            self.done_owed = true;
                            self.unflushed = false;
                        }
                        Some(TtsInput::Close) | None => {
                            self.take_rest();
                            self.done_owed |= std::mem::take(&mut self.unflushed);
                            self.eos = true;
                        }
                    }
                    if self.in_flight.is_none() {
                        deadline = Instant::now() + IDLE;
                        if !self.next_request(ws).await? {
                            return Ok(());
                        }
                    }
                }
                () = tokio::time::sleep_until(deadline), if self.in_flight.is_some() => {
                    return Err(TtsError::Protocol("no turn.end from the service".into()));
                }
            }
        }
    }

    /// The unfinished sentence, on flush or close; whitespace alone is not worth a request.
    fn take_rest(&mut self) {
        if !self.buffer.trim().is_empty() {
            self.queue.push_back(std::mem::take(&mut self.buffer));
            self.unflushed = true;
        }
        self.buffer.clear();
    }

    /// Starts the next queued request, or settles a flush when nothing is left. False when the
    /// session has gone.
    async fn next_request(&mut self, ws: &mut Ws) -> Result<bool, TtsError> {
        let Some(sentence) = self.queue.pop_front() else {
            if std::mem::take(&mut self.done_owed) {
                return Ok(
                    self.emit(TtsEvent::Done).await && self.emit(TtsEvent::Usage { characters: self.chars }).await
                );
            }
            return Ok(true);
        };
        let request_id = usp::new_id();
        if !self.config_sent {
            self.config_sent = true;
            self.send_text(ws, "speech.config", &request_id, "application/json", &wire::speech_config()).await?;
        }
        let context = wire::synthesis_context(self.opts.output_format);
        self.send_text(ws, "synthesis.context", &request_id, "application/json", &context).await?;
        let ssml = wire::ssml(&self.opts.voice, &sentence);
        self.send_text(ws, "ssml", &request_id, "application/ssml+xml", &ssml).await?;
        self.chars += sentence.chars().count() as u64;
        self.in_flight = Some(InFlight { request_id, stream_id: None });
        Ok(true)
    }

    async fn send_text(&mut self, ws: &mut Ws, path: &str, id: &str, ct: &str, body: &str) -> Result<(), TtsError> {
        usp::write_text(&mut self.text, path, id, Some(ct), body);
        ws.send(Message::text(self.text.as_str()))
            .await
            .map_err(|e| TtsError::Closed { code: 1006, reason: format!("send failed: {e}") })
    }

    fn ours(&self, request_id: Option<&str>) -> Option<&InFlight> {
        self.in_flight.as_ref().filter(|f| request_id.is_some_and(|id| id.eq_ignore_ascii_case(&f.request_id)))
    }

    /// One text message. False when the session has gone.
    async fn on_text(&mut self, ws: &mut Ws, frame: &str) -> Result<bool, TtsError> {
        let (h, body) = usp::parse_text(frame).map_err(|e| TtsError::Protocol(e.reason().into()))?;
        if self.ours(h.request_id).is_none() {
            return Ok(true);
        }
        match h.path.map(str::to_ascii_lowercase).as_deref() {
            Some("response") => {
                let r: wire::Response = serde_json::from_str(body)
                    .map_err(|e| TtsError::Protocol(format!("undecodable response message: {e}")))?;
                if let Some(f) = self.in_flight.as_mut() {
                    f.stream_id = Some(r.audio.stream_id);
                }
            }
            Some("turn.end") => {
                self.in_flight = None;
                self.odd = None;
                return self.next_request(ws).await;
            }
            _ => {}
        }
        Ok(true)
    }

    /// One binary frame: audio of the open request's stream becomes an `Audio` event, zero-copy
    /// unless a sample straddles two frames. False when the session has gone.
    async fn on_audio(&mut self, frame: Bytes) -> bool {
        let Ok((h, body)) = usp::parse_binary(&frame) else {
            tracing::debug!("azure tts: undecodable binary frame skipped");
            return true;
        };
        let Some(f) = self.ours(h.request_id) else { return true };
        let stream_ok = match (&f.stream_id, h.stream_id) {
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            _ => true,
        };
        if !stream_ok || !h.path.is_some_and(|p| p.eq_ignore_ascii_case("audio")) || body.is_empty() {
            return true;
        }
        let start = frame.len() - body.len();
        let pcm = if self.odd.is_none() && body.len() % 2 == 0 {
            frame.slice(start..)
        } else {
            let mut joined = BytesMut::with_capacity(body.len() + 1);
            joined.extend(self.odd.take());
            joined.extend_from_slice(body);
            if joined.len() % 2 == 1 {
                self.odd = joined.last().copied();
                joined.truncate(joined.len() - 1);
            }
            joined.freeze()
        };
        pcm.is_empty() || self.emit(TtsEvent::Audio { pcm, alignment: None }).await
    }

    async fn emit(&self, ev: TtsEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }
}

/// Byte index just past the first complete sentence (terminal punctuation, then whitespace) that
/// is long enough to speak on its own.
fn sentence_end(buf: &str) -> Option<usize> {
    let mut chars = buf.char_indices().peekable();
    let mut count = 0;
    while let Some((_, c)) = chars.next() {
        count += 1;
        if matches!(c, '.' | '!' | '?' | ';' | '…' | '。' | '！' | '？') && count >= MIN_SENTENCE_CHARS {
            if let Some(&(i, next)) = chars.peek() {
                if next.is_whitespace() {
                    return Some(i + next.len_utf8());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_cut_after_the_following_space() {
        let buf = "Hello there. How are you today? I am";
        let cut = sentence_end(buf).unwrap();
        assert_eq!(&buf[..cut], "Hello there. ");
        assert_eq!(sentence_end("Hi. Dr. Who"), None, "too short to stand alone");
        assert_eq!(sentence_end("No end in sight yet."), None, "no whitespace after the stop yet");
    }
}
