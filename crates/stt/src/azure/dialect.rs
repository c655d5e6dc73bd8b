//! Azure Speech recognition as a [`Dialect`]: turns (speech.context + WAV header + audio +
//! end-of-audio), results in, locally counted usage at the end.

use super::wire::{self, Service, Status, TICKS_PER_S};
use crate::wspump::{pcm_ms, plain_closed, Dialect, Flow};
use crate::{SttError, SttEvent};
use bytes::{Bytes, BytesMut};
use tokio_tungstenite::tungstenite::{protocol::CloseFrame, Message};

/// Largest audio body per message (the service's documented chunk limit).
const MAX_AUDIO_BODY: usize = 8192;

#[derive(PartialEq)]
enum Turn {
    /// Audio flows under the current request id.
    Open,
    /// End-of-audio sent; results of this turn still arrive until `turn.end`.
    Ending,
}

/// One recognition connection: continuous turns under fresh request ids.
pub(super) struct Recognition {
    sample_rate: u32,
    /// Audio kept while a finalized turn drains (it goes out in the next turn).
    hold_limit: usize,
    request_id: String,
    turn: Turn,
    closing: bool,
    /// PCM bytes sent before the current turn began: service offsets restart at each turn.
    turn_base_bytes: u64,
    /// PCM bytes sent (headers excluded): Azure reports no usage, so this is billed.
    audio_bytes: u64,
    /// Audio that arrived while a finalized turn was draining.
    held: BytesMut,
    frame: BytesMut,
    text: String,
    /// End of the last recognized phrase since speech started, for `UtteranceEnd`.
    last_phrase_end_s: Option<f64>,
}

impl Recognition {
    pub(super) fn new(sample_rate: u32, hold_limit: usize) -> Self {
        Self {
            sample_rate,
            hold_limit,
            request_id: usp::new_id(),
            turn: Turn::Open,
            closing: false,
            turn_base_bytes: 0,
            audio_bytes: 0,
            held: BytesMut::new(),
            frame: BytesMut::with_capacity(1024),
            text: String::new(),
            last_phrase_end_s: None,
        }
    }

    fn bytes_per_s(&self) -> u64 {
        u64::from(self.sample_rate.max(1)) * 2
    }
}

impl Dialect for Recognition {
    const NAME: &'static str = "azure";

    /// `speech.config`, then the first turn.
    fn start(&mut self, out: &mut Vec<Message>) {
        let config = wire::speech_config(self.sample_rate);
        out.push(self.text_message("speech.config", &config));
        self.begin_turn(false, out);
    }

    fn audio(&mut self, pcm: Bytes, out: &mut Vec<Message>) -> Result<(), SttError> {
        self.on_audio(&pcm, out);
        Ok(())
    }

    fn finalize(&mut self, out: &mut Vec<Message>) {
        self.end_turn(out);
    }

    /// No keep-alive message exists in this protocol; a ping keeps proxies awake.
    fn keepalive(&mut self, out: &mut Vec<Message>) {
        out.push(Message::Ping(Bytes::new()));
    }

    /// End-of-audio; the stream ends at the last `turn.end`, even when this turn already ended.
    fn close(&mut self, out: &mut Vec<Message>) -> Flow {
        self.closing = true;
        self.end_turn(out);
        Flow::Continue
    }

    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>, out: &mut Vec<Message>) -> Result<Flow, SttError> {
        self.on_text(text, events, out)
    }

    fn closed(frame: Option<&CloseFrame>, _closing: bool) -> Result<(), SttError> {
        plain_closed(frame)
    }

    fn usage(&self, _sent_bytes: u64, sample_rate: u32) -> SttEvent {
        SttEvent::Usage { audio_ms: pcm_ms(self.audio_bytes, sample_rate), estimated: true }
    }
}

impl Recognition {
    /// One service message; answers (a new turn) go on `out`.
    fn on_text(&mut self, frame: &str, events: &mut Vec<SttEvent>, out: &mut Vec<Message>) -> Result<Flow, SttError> {
        let (headers, body) = usp::parse_text(frame).map_err(|e| SttError::Protocol(e.reason().into()))?;
        // Late messages of a turn we already left are the SDK's to drop too.
        if !headers.request_id.is_some_and(|id| id.eq_ignore_ascii_case(&self.request_id)) {
            return Ok(Flow::Continue);
        }
        let service = wire::decode(headers.path.unwrap_or(""), body)?;
        let event = match service {
            Service::TurnStart | Service::Other => None,
            Service::SpeechStart { offset } => {
                self.last_phrase_end_s = None;
                Some(SttEvent::SpeechStarted { at_s: self.at(offset) })
            }
            Service::Hypothesis { text, offset, duration } => (!text.is_empty()).then(|| SttEvent::Interim {
                text,
                start_s: self.at(offset),
                end_s: self.at(offset.saturating_add(duration)),
            }),
            Service::Phrase(phrase) => match wire::status(&phrase.recognition_status) {
                Status::Recognized if !phrase.text().is_empty() => {
                    let (start_s, end_s) =
                        (self.at(phrase.offset), self.at(phrase.offset.saturating_add(phrase.duration)));
                    self.last_phrase_end_s = Some(end_s);
                    // Phrases flushed by our end-of-audio were cut, not endpointed by silence.
                    let speech_final = self.turn == Turn::Open;
                    Some(SttEvent::Final { text: phrase.text().to_string(), start_s, end_s, speech_final })
                }
                Status::Recognized | Status::NoMatch | Status::EndOfDictation => None,
                Status::Failed(e) => return Err(e),
            },
            Service::SpeechEnd { offset } => {
                let last_word_end_s = self.last_phrase_end_s.take().unwrap_or_else(|| self.at(offset));
                Some(SttEvent::UtteranceEnd { last_word_end_s })
            }
            Service::TurnEnd => {
                if self.closing && self.held.is_empty() {
                    return Ok(Flow::Finished);
                }
                // Continuous recognition: a turn the service ended (or we finalized) is followed
                // by a new one under a fresh request id.
                self.begin_turn(true, out);
                if !self.held.is_empty() {
                    let held = self.held.split().freeze();
                    self.on_audio(&held, out);
                }
                if self.closing {
                    self.end_turn(out);
                }
                None
            }
        };
        events.extend(event);
        Ok(Flow::Continue)
    }

    /// Stream seconds of a turn-relative tick offset, to the millisecond.
    fn at(&self, ticks: u64) -> f64 {
        let base = self.turn_base_bytes as f64 / self.bytes_per_s() as f64;
        ((base + ticks as f64 / TICKS_PER_S) * 1000.0).round() / 1000.0
    }

    /// `speech.context` and the WAV header under a request id; a fresh id for every turn after
    /// the first (the service closes 1002 on a reused one).
    fn begin_turn(&mut self, new_id: bool, out: &mut Vec<Message>) {
        if new_id {
            self.request_id = usp::new_id();
        }
        self.turn = Turn::Open;
        self.turn_base_bytes = self.audio_bytes;
        out.push(self.text_message("speech.context", wire::SPEECH_CONTEXT));
        let header = usp::wav_header(usp::WAVE_PCM, self.sample_rate, 16);
        out.push(self.audio_message(Some("audio/x-wav"), &header));
    }

    /// End-of-audio for the current turn: an `audio` message with an empty body.
    fn end_turn(&mut self, out: &mut Vec<Message>) {
        if self.turn == Turn::Ending {
            return;
        }
        self.turn = Turn::Ending;
        out.push(self.audio_message(None, &[]));
    }

    fn on_audio(&mut self, pcm: &[u8], out: &mut Vec<Message>) {
        if self.turn == Turn::Ending {
            let room = self.hold_limit.saturating_sub(self.held.len());
            if room < pcm.len() {
                tracing::warn!(dropped = pcm.len() - room, "azure stt: audio held during a finalize overflowed");
            }
            self.held.extend_from_slice(pcm.get(..room.min(pcm.len())).unwrap_or_default());
            return;
        }
        for chunk in pcm.chunks(MAX_AUDIO_BODY) {
            out.push(self.audio_message(None, chunk));
            self.audio_bytes += chunk.len() as u64;
        }
    }

    fn audio_message(&mut self, content_type: Option<&str>, body: &[u8]) -> Message {
        // Reclaims the previous frame's allocation once the socket has let go of it.
        self.frame.reserve(200 + body.len());
        usp::write_binary(&mut self.frame, "audio", &self.request_id, content_type, None, body);
        Message::Binary(self.frame.split().freeze())
    }

    fn text_message(&mut self, path: &str, body: &str) -> Message {
        usp::write_text(&mut self.text, path, &self.request_id, Some("application/json"), body);
        Message::text(self.text.as_str())
    }
}
