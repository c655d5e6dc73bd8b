//! The Soniox socket as a [`Dialect`]: one Soniox stream per flushed turn on one socket (its
//! config message first), `text_end` per flush, `cancel` for a stream that never got text;
//! per-stream timings moved onto the stream clock.

use super::{wire, StreamSettings};
use crate::socket::pump::{Closing, Dialect, Incoming};
use crate::TtsError;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{protocol::CloseFrame, Message};

/// One Soniox stream on the socket, until its `terminated`.
struct Live {
    id: String,
    has_text: bool,
    /// `text_end` or `cancel` sent: no more text goes to it.
    ending: bool,
    /// Stream time (ms) at its first audio: Soniox timings restart per stream.
    offset_ms: Option<u32>,
}

/// No `cancel` on barge-in: closing the socket ends its streams, no round trip needed.
pub(super) struct Streams {
    settings: StreamSettings,
    prefix: String,
    next: u32,
    live: Vec<Live>,
    /// Samples received: the stream clock.
    samples: u64,
    closing: bool,
}

impl Streams {
    /// `{prefix}-0` is already configured (its config went out at connect).
    pub(super) fn new(settings: StreamSettings, prefix: String) -> Self {
        let first = Live { id: format!("{prefix}-0"), has_text: false, ending: false, offset_ms: None };
        Self { settings, prefix, next: 1, live: vec![first], samples: 0, closing: false }
    }

    /// The stream taking text, opening one (config message first) if the last has ended.
    fn current(&mut self, out: &mut Vec<Message>) -> Result<&mut Live, TtsError> {
        if self.live.last().is_none_or(|l| l.ending) {
            let id = format!("{}-{}", self.prefix, self.next);
            self.next += 1;
            out.push(Message::text(self.settings.config(&id)?));
            self.live.push(Live { id, has_text: false, ending: false, offset_ms: None });
        }
        self.live.last_mut().ok_or_else(|| TtsError::Protocol("no open stream".into()))
    }

    /// Ends the open stream: `text_end` after text, `cancel` when it never got any.
    fn end_current(&mut self, out: &mut Vec<Message>) {
        if let Some(l) = self.live.last_mut().filter(|l| !l.ending) {
            l.ending = true;
            out.push(Message::text(if l.has_text { wire::text(&l.id, "", true) } else { wire::cancel(&l.id) }));
        }
    }

    fn on_message(&mut self, inc: wire::Incoming, out: &mut Vec<Incoming>) {
        if let Some(e) = inc.error {
            return out.push(Incoming::Fatal(e));
        }
        let Some(idx) = inc.stream_id.as_deref().and_then(|id| self.live.iter().position(|l| l.id == id)) else {
            return; // a stream already forgotten
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
                out.extend(alignment.map(Incoming::Timings));
                out.push(Incoming::Audio(pcm));
            }
        }
        if inc.terminated {
            let ended = self.live.remove(idx);
            if ended.has_text && !self.live.iter().any(|l| l.has_text) {
                out.push(Incoming::Done);
            }
            if self.closing && self.live.is_empty() {
                out.push(Incoming::Ended);
            }
        }
    }
}

impl Dialect for Streams {
    const STALL: &'static str = "no terminated after text_end";
    /// Soniox closes idle sockets after 20–30 s; pipecat pings every 20 s.
    const KEEPALIVE: Option<Duration> = Some(Duration::from_secs(20));

    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError> {
        let stream = self.current(out)?;
        stream.has_text = true;
        out.push(Message::text(wire::text(&stream.id, text, false)));
        Ok(())
    }

    /// Soniox has no flush: `text_end` ends the stream, and later text opens a new one.
    fn flush(&mut self, out: &mut Vec<Message>) {
        if self.live.last().is_some_and(|l| l.has_text) {
            self.end_current(out);
        }
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Closing {
        self.closing = true;
        self.end_current(out);
        Closing::unless_busy(!self.live.is_empty(), Closing::Quiet)
    }

    fn keepalive(&mut self, out: &mut Vec<Message>) {
        out.push(Message::text(wire::KEEP_ALIVE));
    }

    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>) {
        let Message::Text(text) = msg else { return };
        match wire::parse(&text) {
            Ok(inc) => self.on_message(inc, out),
            Err(e) => out.push(Incoming::Fatal(e)),
        }
    }

    /// A close is normal only when no stream is left.
    fn closed(&self, frame: Option<&CloseFrame>) -> Option<TtsError> {
        let e = crate::socket::pump::close_error(frame);
        (!matches!(e, TtsError::Closed { code: 1000, .. }) || !self.live.is_empty()).then_some(e)
    }
}
