//! One synthesizer stream on wsclient's frame loop: text in, audio/events out, usage at the
//! end. Each provider supplies a [`Dialect`] that spells our inputs and reads its messages;
//! [`Session`] holds the rules every stream keeps (characters counted as sent, whole samples,
//! timings attached to audio, bounded drains, one closing `Usage`).

use super::words::{Timeline, WordTimes};
use crate::{Alignment, TtsError, TtsEvent, TtsInput, TtsStream};
use bytes::Bytes;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wsclient::tungstenite::{self, protocol::CloseFrame, Message};
use wsclient::{End, Flow, Io, Ws};

/// Text queue depth: LLM chunks arrive a few per second, so 64 is seconds of slack.
const TEXT_QUEUE: usize = 64;
/// Event queue depth: ~128 audio chunks of 100–250 ms each.
const EVENT_QUEUE: usize = 128;
/// After end of input, give up if the provider stays silent this long without finishing.
const EOS_IDLE: Duration = Duration::from_secs(10);
/// After a failed write, how long to wait for the close frame that explains it.
const SEND_FAIL_WAIT: Duration = Duration::from_secs(2);

/// What one provider message meant.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// s16le PCM; may end mid-sample (the pump carries the odd byte).
    Audio(Bytes),
    /// Word timings in seconds, laid on the stream's word clock.
    Words(WordTimes),
    /// Timings already on the stream clock (ms), attached to the next audio.
    Timings(Alignment),
    /// One flush's text is voiced while more is pending: timings that trailed its audio go out.
    Voiced,
    /// Everything flushed so far is voiced: trailing timings, then [`TtsEvent::Done`].
    Done,
    /// [`Incoming::Done`], and the stream is over.
    Finished,
    /// The stream is over, with nothing more to report.
    Ended,
    /// The stream cannot go on.
    Fatal(TtsError),
}

/// What end of input leaves outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// The provider is still voicing; wait for it (bounded).
    Pending,
    /// Everything asked for is voiced: `Done`, and the stream is over.
    Done,
    /// Nothing was asked for: the stream is over without a `Done`.
    Quiet,
}

impl Closing {
    /// `Pending` while any request is still being voiced, else `settled` (`Done` or `Quiet`, as
    /// the provider ends a stream with nothing left).
    pub(crate) fn unless_busy(busy: bool, settled: Self) -> Self {
        if busy {
            Self::Pending
        } else {
            settled
        }
    }
}

/// One provider's spelling of the stream. Methods push wire messages into `out`.
pub(crate) trait Dialect: Send + 'static {
    /// The error text when the provider goes quiet after end of input without finishing.
    const STALL: &'static str = "the provider did not finish after end of input";
    /// Send [`Dialect::keepalive`] after this long without sending, while input flows.
    const KEEPALIVE: Option<Duration> = None;
    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError>;
    /// End of the agent's turn: generate what is buffered.
    fn flush(&mut self, out: &mut Vec<Message>);
    /// End of input.
    fn close(&mut self, out: &mut Vec<Message>) -> Closing;
    /// After the provider finished: messages that end the session politely.
    fn goodbye(&mut self, _out: &mut Vec<Message>) {}
    /// The session dropped the stream (barge-in): stop generating before we hang up.
    fn cancel(&mut self, _out: &mut Vec<Message>) {}
    /// Keep an idle socket open (see [`Dialect::KEEPALIVE`]).
    fn keepalive(&mut self, _out: &mut Vec<Message>) {}
    /// Reads one data frame (text or binary) into `out`.
    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>);
    /// What the provider closing the socket means: by default an error, whatever the code
    /// (the stream ends at `Finished`, before any close).
    fn closed(&self, frame: Option<&CloseFrame>) -> Option<TtsError> {
        Some(close_error(frame))
    }
}

/// A close frame as an error (1005 when it had no code).
pub(crate) fn close_error(frame: Option<&CloseFrame>) -> TtsError {
    let (code, reason) = frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
    TtsError::Closed { code, reason }
}

/// Close rule of providers that end a finished stream with 1000: only another code is an error.
pub(crate) fn abnormal_close(frame: Option<&CloseFrame>) -> Option<TtsError> {
    Some(close_error(frame)).filter(|e| !matches!(e, TtsError::Closed { code: 1000, .. }))
}

/// Start the socket task for `dialect`; the caller gets the two channel halves.
pub(crate) fn spawn<D: Dialect>(ws: Ws, dialect: D) -> TtsStream {
    let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(wsclient::run(ws, Session::new(dialect), text_rx, events_tx));
    TtsStream { text: text_tx, events: events_rx }
}

/// How the stream ended, which decides the last messages sent.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    Finished,
    Abandoned,
    Failed,
}

#[derive(Clone, Copy, PartialEq)]
enum Draining {
    No,
    AfterEos,
    AfterSendFailure,
}

pub(crate) struct Session<D> {
    d: D,
    /// Billable characters: the caller's text as sent.
    chars: u64,
    /// A byte of a sample split across two audio messages.
    carry: Option<u8>,
    timeline: Timeline,
    /// Timings received but not yet attached to audio.
    aligned: Option<Alignment>,
    incoming: Vec<Incoming>,
    draining: Draining,
    /// When the drain (or keep-alive) clock is looked at next; it moves lazily, so a stream of
    /// audio does not re-arm the timer per message.
    check_at: Instant,
    /// Last provider message while draining after end of input.
    last_heard: Instant,
    /// Last input sent, for the keep-alive.
    last_sent: Instant,
    ending: Ending,
}

impl<D: Dialect> Session<D> {
    fn new(d: D) -> Self {
        let now = Instant::now();
        Self {
            d,
            chars: 0,
            carry: None,
            timeline: Timeline::default(),
            aligned: None,
            incoming: Vec::new(),
            draining: Draining::No,
            check_at: now + D::KEEPALIVE.unwrap_or(EOS_IDLE),
            last_heard: now,
            last_sent: now,
            ending: Ending::Failed,
        }
    }

    fn end(&mut self, ending: Ending) -> Flow {
        self.ending = ending;
        Flow::Stop
    }

    fn fail(&mut self, e: TtsError, io: &mut Io<TtsEvent>) -> Flow {
        io.events.push(TtsEvent::Error(e));
        self.end(Ending::Failed)
    }

    /// Turns what the last message meant into events; `Stop` when the stream is over.
    fn deliver(&mut self, io: &mut Io<TtsEvent>) -> Flow {
        let mut flow = Flow::Continue;
        let mut incoming = std::mem::take(&mut self.incoming);
        for inc in incoming.drain(..) {
            match inc {
                Incoming::Audio(pcm) => {
                    let pcm = self.whole_samples(pcm);
                    // Timings alone (Soniox sends some without audio) still go out.
                    if !pcm.is_empty() || self.aligned.as_ref().is_some_and(|a| !a.chars.is_empty()) {
                        io.events.push(TtsEvent::Audio { pcm, alignment: self.aligned.take() });
                    }
                }
                Incoming::Words(w) => self.timeline.push(&w, self.aligned.get_or_insert_with(Alignment::default)),
                Incoming::Timings(al) => match &mut self.aligned {
                    Some(held) => {
                        held.chars.extend(al.chars);
                        held.start_ms.extend(al.start_ms);
                        held.duration_ms.extend(al.duration_ms);
                    }
                    None => self.aligned = Some(al),
                },
                Incoming::Voiced => self.trailing(io),
                Incoming::Done => {
                    self.trailing(io);
                    io.events.push(TtsEvent::Done);
                }
                Incoming::Finished => {
                    self.trailing(io);
                    io.events.push(TtsEvent::Done);
                    flow = self.end(Ending::Finished);
                    break;
                }
                Incoming::Ended => {
                    flow = self.end(Ending::Finished);
                    break;
                }
                Incoming::Fatal(e) => {
                    flow = self.fail(e, io);
                    break;
                }
            }
        }
        incoming.clear();
        self.incoming = incoming;
        flow
    }

    /// Timings that came after the last audio still belong to the stream.
    fn trailing(&mut self, io: &mut Io<TtsEvent>) {
        if let Some(alignment) = self.aligned.take().filter(|a| !a.chars.is_empty()) {
            io.events.push(TtsEvent::Audio { pcm: Bytes::new(), alignment: Some(alignment) });
        }
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

impl<D: Dialect> wsclient::Driver for Session<D> {
    type Input = TtsInput;
    type Event = TtsEvent;
    /// Barge-in drops the receiver: stop generating at once (the dialect's `cancel`).
    const STOP_WHEN_UNHEARD: bool = true;

    fn frame(&mut self, msg: Option<Result<Message, tungstenite::Error>>, io: &mut Io<TtsEvent>) -> Flow {
        if self.draining == Draining::AfterEos {
            self.last_heard = Instant::now();
        }
        match msg {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                self.d.parse(m, &mut self.incoming);
                self.deliver(io)
            }
            Some(Ok(Message::Close(frame))) => match self.d.closed(frame.as_ref()) {
                Some(e) => self.fail(e, io),
                None => self.end(Ending::Failed),
            },
            Some(Ok(_)) => Flow::Continue,
            Some(Err(e)) => self.fail(TtsError::Closed { code: 1006, reason: e.to_string() }, io),
            None => self.fail(TtsError::Closed { code: 1006, reason: "connection lost".into() }, io),
        }
    }

    fn input(&mut self, input: Option<TtsInput>, io: &mut Io<TtsEvent>) -> Flow {
        let eos = match input {
            Some(TtsInput::Text(s)) if s.is_empty() => return Flow::Continue,
            Some(TtsInput::Text(s)) => {
                self.chars += s.chars().count() as u64;
                if let Err(e) = self.d.text(&s, &mut io.out) {
                    return self.fail(e, io);
                }
                false
            }
            Some(TtsInput::Flush) => {
                self.d.flush(&mut io.out);
                io.events.push(TtsEvent::Usage { characters: self.chars });
                false
            }
            Some(TtsInput::Close) | None => true,
        };
        if D::KEEPALIVE.is_some() {
            self.last_sent = Instant::now();
        }
        if !eos {
            return Flow::Continue;
        }
        match self.d.close(&mut io.out) {
            Closing::Done => {
                io.events.push(TtsEvent::Done);
                self.end(Ending::Finished)
            }
            Closing::Quiet => self.end(Ending::Finished),
            Closing::Pending => {
                self.draining = Draining::AfterEos;
                self.last_heard = Instant::now();
                self.check_at = self.last_heard + EOS_IDLE;
                Flow::Continue
            }
        }
    }

    fn accepts_input(&self) -> bool {
        self.draining == Draining::No
    }

    fn deadline(&self) -> Option<Instant> {
        match self.draining {
            Draining::No => D::KEEPALIVE.map(|_| self.check_at),
            Draining::AfterEos | Draining::AfterSendFailure => Some(self.check_at),
        }
    }

    fn timer(&mut self, io: &mut Io<TtsEvent>) -> Flow {
        let now = Instant::now();
        match self.draining {
            Draining::AfterSendFailure => self.fail(TtsError::Closed { code: 1006, reason: "send failed".into() }, io),
            Draining::AfterEos if now >= self.last_heard + EOS_IDLE => {
                self.fail(TtsError::Protocol(D::STALL.into()), io)
            }
            Draining::AfterEos => {
                self.check_at = self.last_heard + EOS_IDLE;
                Flow::Continue
            }
            Draining::No => {
                if let Some(every) = D::KEEPALIVE {
                    if now >= self.last_sent + every {
                        self.d.keepalive(&mut io.out);
                        self.last_sent = now;
                    }
                    self.check_at = self.last_sent + every;
                }
                Flow::Continue
            }
        }
    }

    fn send_failed(&mut self, _error: tungstenite::Error, _io: &mut Io<TtsEvent>) -> Flow {
        self.draining = Draining::AfterSendFailure;
        self.check_at = Instant::now() + SEND_FAIL_WAIT;
        Flow::Continue
    }

    fn finish(&mut self, end: End, io: &mut Io<TtsEvent>) {
        let ending = if end == End::Unheard { Ending::Abandoned } else { self.ending };
        match ending {
            Ending::Finished => self.d.goodbye(&mut io.out),
            Ending::Abandoned => self.d.cancel(&mut io.out),
            Ending::Failed => {}
        }
        io.events.push(TtsEvent::Usage { characters: self.chars });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;

    impl Dialect for Silent {
        fn text(&mut self, _text: &str, _out: &mut Vec<Message>) -> Result<(), TtsError> {
            Ok(())
        }
        fn flush(&mut self, _out: &mut Vec<Message>) {}
        fn close(&mut self, _out: &mut Vec<Message>) -> Closing {
            Closing::Quiet
        }
        fn parse(&mut self, _msg: Message, _out: &mut Vec<Incoming>) {}
    }

    fn pump() -> Session<Silent> {
        Session::new(Silent)
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
