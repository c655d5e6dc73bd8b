//! The xAI socket as a [`Dialect`]: `text.delta` per piece, one `text.done` per flush answered
//! by `audio.done`; utterance-relative timings moved onto the stream clock.

use super::wire;
use crate::socket::pump::{abnormal_close, Closing, Dialect, Incoming};
use crate::TtsError;
use tokio_tungstenite::tungstenite::{protocol::CloseFrame, Message};

pub(super) struct Utterances {
    rate: u64,
    /// Samples received so far: the clock that makes utterance-relative timings stream-relative.
    samples: u64,
    /// Stream time at which the current utterance's audio began.
    utterance_ms: u64,
    /// Text sent since the last `text.done`.
    unflushed: bool,
    /// `text.done`s not yet answered by `audio.done`.
    outstanding: u32,
    closing: bool,
}

impl Utterances {
    pub(super) fn new(sample_rate: u32) -> Self {
        Self {
            rate: u64::from(sample_rate.max(1)),
            samples: 0,
            utterance_ms: 0,
            unflushed: false,
            outstanding: 0,
            closing: false,
        }
    }

    /// `text.done` if text is waiting for it; an empty flush sends nothing.
    fn take_flush(&mut self, out: &mut Vec<Message>) {
        if std::mem::take(&mut self.unflushed) {
            self.outstanding += 1;
            out.push(Message::text(wire::TEXT_DONE));
        }
    }
}

impl Dialect for Utterances {
    const STALL: &'static str = "no audio.done after text.done";

    fn text(&mut self, text: &str, out: &mut Vec<Message>) -> Result<(), TtsError> {
        self.unflushed = true;
        out.push(Message::text(wire::text_delta(text)));
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Message>) {
        self.take_flush(out);
    }

    /// Nothing outstanding ends the stream at once, without a `Done`.
    fn close(&mut self, out: &mut Vec<Message>) -> Closing {
        self.closing = true;
        self.take_flush(out);
        Closing::unless_busy(self.outstanding > 0, Closing::Quiet)
    }

    fn parse(&mut self, msg: Message, out: &mut Vec<Incoming>) {
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => return tracing::debug!("xai: unexpected binary frame ignored"),
            _ => return,
        };
        match wire::parse(&text) {
            Ok(wire::Incoming::Audio { pcm, timing }) => {
                if let Some(mut al) = timing {
                    let offset = u32::try_from(self.utterance_ms).unwrap_or(u32::MAX);
                    for t in &mut al.start_ms {
                        *t = t.saturating_add(offset);
                    }
                    out.push(Incoming::Timings(al));
                }
                // Timestamp-only deltas: their timings wait for the next audio.
                if !pcm.is_empty() {
                    self.samples += pcm.len() as u64 / 2;
                    out.push(Incoming::Audio(pcm));
                }
            }
            Ok(wire::Incoming::Done) => {
                self.utterance_ms = self.samples * 1000 / self.rate;
                self.outstanding = self.outstanding.saturating_sub(1);
                out.push(if self.outstanding > 0 || self.unflushed {
                    Incoming::Voiced
                } else if self.closing {
                    Incoming::Finished
                } else {
                    Incoming::Done
                });
            }
            Ok(wire::Incoming::Ignored) => {}
            Ok(wire::Incoming::Error(e)) | Err(e) => out.push(Incoming::Fatal(e)),
        }
    }

    fn closed(&self, frame: Option<&CloseFrame>) -> Option<TtsError> {
        abnormal_close(frame)
    }
}
