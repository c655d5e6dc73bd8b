//! The Azure synthesis socket on wsclient's frame loop: the stream's first piece of text (the
//! reply's first phrase, so the caller hears it before its sentence ends) and then each
//! sentence is one request (synthesis.context + ssml) answered by turn.start / response /
//! audio… / turn.end. The SDK runs one request at a time per connection, and so does this
//! driver. It is a [`wsclient::Driver`] of its own, not a `socket::pump` dialect: it bills the
//! sentences it requested (markup and never-sent text excluded), reported when a flush settles.

use super::wire;
use crate::{TtsError, TtsEvent, TtsInput, TtsStream};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use wsclient::{End, Flow, Io, Ws};

/// Waiting on the service this long (no message while a request is open) ends the stream.
const IDLE: Duration = Duration::from_secs(10);
/// A sentence shorter than this waits for more text (keeps "Dr." or "1." from being cut alone).
const MIN_SENTENCE_CHARS: usize = 12;
const TEXT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 128;

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

pub(super) struct Synthesis {
    opts: Opts,
    /// Text not yet cut into a sentence.
    buffer: String,
    /// Text has come: the first phrase is behind us.
    spoke: bool,
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
    /// Characters of the request started by the current step, taken back if its write fails.
    started_now: u64,
    /// Odd trailing byte of the previous audio frame, so every event holds whole samples.
    odd: Option<u8>,
    text: String,
    /// Last message from the service (or request started): the idle clock.
    idle_from: Instant,
    /// When the idle clock is looked at next; moved lazily, not per audio frame.
    check_at: Instant,
}

/// Start the socket task; the caller gets the two channel halves.
pub(super) fn spawn(ws: Ws, opts: Opts) -> TtsStream {
    let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let now = Instant::now();
    let driver = Synthesis {
        opts,
        buffer: String::new(),
        spoke: false,
        queue: VecDeque::new(),
        in_flight: None,
        config_sent: false,
        done_owed: false,
        unflushed: false,
        eos: false,
        chars: 0,
        started_now: 0,
        odd: None,
        text: String::new(),
        idle_from: now,
        check_at: now + IDLE,
    };
    tokio::spawn(wsclient::run(ws, driver, text_rx, events_tx));
    TtsStream { text: text_tx, events: events_rx }
}

impl wsclient::Driver for Synthesis {
    type Input = TtsInput;
    type Event = TtsEvent;
    /// Barge-in: stop at once; closing the socket ends the request.
    const STOP_WHEN_UNHEARD: bool = true;

    fn frame(&mut self, msg: Option<Result<Message, tungstenite::Error>>, io: &mut Io<TtsEvent>) -> Flow {
        self.started_now = 0;
        self.idle_from = Instant::now();
        let step = match msg {
            Some(Ok(Message::Text(t))) => self.on_text(&t, io),
            Some(Ok(Message::Binary(frame))) => {
                self.on_audio(frame, io);
                Ok(())
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) =
                    frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                if code != 1000 || self.in_flight.is_some() || !self.queue.is_empty() {
                    Err(TtsError::Closed { code, reason })
                } else {
                    return Flow::Stop;
                }
            }
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(TtsError::Closed { code: 1006, reason: e.to_string() }),
            None => Err(TtsError::Closed { code: 1006, reason: "connection lost".into() }),
        };
        self.settle(step, io)
    }

    fn input(&mut self, input: Option<TtsInput>, io: &mut Io<TtsEvent>) -> Flow {
        self.started_now = 0;
        match input {
            Some(TtsInput::Text(s)) => {
                self.buffer.push_str(&s);
                if !s.trim().is_empty() && !std::mem::replace(&mut self.spoke, true) {
                    self.take_rest();
                }
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
        let step = if self.in_flight.is_none() {
            self.idle_from = Instant::now();
            self.next_request(io)
        } else {
            Ok(())
        };
        self.settle(step, io)
    }

    fn accepts_input(&self) -> bool {
        !self.eos
    }

    fn deadline(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|_| self.check_at)
    }

    fn timer(&mut self, io: &mut Io<TtsEvent>) -> Flow {
        let due = self.idle_from + IDLE;
        if Instant::now() < due {
            self.check_at = due;
            return Flow::Continue;
        }
        self.settle(Err(TtsError::Protocol("no turn.end from the service".into())), io)
    }

    fn send_failed(&mut self, error: tungstenite::Error, io: &mut Io<TtsEvent>) -> Flow {
        // The request did not go out whole: it is not billed.
        self.chars -= std::mem::take(&mut self.started_now);
        io.events.push(TtsEvent::Error(TtsError::Closed { code: 1006, reason: format!("send failed: {error}") }));
        Flow::Stop
    }

    fn finish(&mut self, _end: End, io: &mut Io<TtsEvent>) {
        io.events.push(TtsEvent::Usage { characters: self.chars });
    }
}

impl Synthesis {
    /// An error ends the stream; so does having spoken everything after `Close`.
    fn settle(&mut self, step: Result<(), TtsError>, io: &mut Io<TtsEvent>) -> Flow {
        if let Err(e) = step {
            io.events.push(TtsEvent::Error(e));
            return Flow::Stop;
        }
        if self.eos && self.in_flight.is_none() && self.queue.is_empty() {
            return Flow::Stop;
        }
        Flow::Continue
    }

    /// The unfinished sentence, on flush or close; whitespace alone is not worth a request.
    fn take_rest(&mut self) {
        if !self.buffer.trim().is_empty() {
            self.queue.push_back(std::mem::take(&mut self.buffer));
            self.unflushed = true;
        }
        self.buffer.clear();
    }

    /// Starts the next queued request, or settles a flush when nothing is left.
    fn next_request(&mut self, io: &mut Io<TtsEvent>) -> Result<(), TtsError> {
        let Some(sentence) = self.queue.pop_front() else {
            if std::mem::take(&mut self.done_owed) {
                io.events.push(TtsEvent::Done);
                io.events.push(TtsEvent::Usage { characters: self.chars });
            }
            return Ok(());
        };
        let request_id = usp::new_id();
        if !self.config_sent {
            self.config_sent = true;
            io.out.push(self.text_message("speech.config", &request_id, "application/json", &wire::speech_config()));
        }
        let context = wire::synthesis_context(self.opts.output_format);
        io.out.push(self.text_message("synthesis.context", &request_id, "application/json", &context));
        let ssml = wire::ssml(&self.opts.voice, &sentence);
        io.out.push(self.text_message("ssml", &request_id, "application/ssml+xml", &ssml));
        self.started_now = sentence.chars().count() as u64;
        self.chars += self.started_now;
        self.in_flight = Some(InFlight { request_id, stream_id: None });
        Ok(())
    }

    fn text_message(&mut self, path: &str, id: &str, ct: &str, body: &str) -> Message {
        usp::write_text(&mut self.text, path, id, Some(ct), body);
        Message::text(self.text.as_str())
    }

    fn ours(&self, request_id: Option<&str>) -> Option<&InFlight> {
        self.in_flight.as_ref().filter(|f| request_id.is_some_and(|id| id.eq_ignore_ascii_case(&f.request_id)))
    }

    /// One text message: the response names the audio stream, turn.end starts the next request.
    fn on_text(&mut self, frame: &str, io: &mut Io<TtsEvent>) -> Result<(), TtsError> {
        let (h, body) = usp::parse_text(frame).map_err(|e| TtsError::Protocol(e.reason().into()))?;
        if self.ours(h.request_id).is_none() {
            return Ok(());
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
                return self.next_request(io);
            }
            _ => {}
        }
        Ok(())
    }

    /// One binary frame: audio of the open request's stream becomes an `Audio` event, zero-copy
    /// unless a sample straddles two frames.
    fn on_audio(&mut self, frame: Bytes, io: &mut Io<TtsEvent>) {
        let Ok((h, body)) = usp::parse_binary(&frame) else {
            tracing::debug!("azure tts: undecodable binary frame skipped");
            return;
        };
        let Some(f) = self.ours(h.request_id) else { return };
        let stream_ok = match (&f.stream_id, h.stream_id) {
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            _ => true,
        };
        if !stream_ok || !h.path.is_some_and(|p| p.eq_ignore_ascii_case("audio")) || body.is_empty() {
            return;
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
        if !pcm.is_empty() {
            io.events.push(TtsEvent::Audio { pcm, alignment: None });
        }
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
