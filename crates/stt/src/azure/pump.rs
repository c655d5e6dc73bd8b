//! The one task that owns an Azure Speech socket: turns (speech.context + WAV header + audio +
//! end-of-audio), results in, locally counted usage at the end.

use super::wire::{self, Service, Status, TICKS_PER_S};
use crate::{SttError, SttEvent, SttInput};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest audio body per message (the service's documented chunk limit).
const MAX_AUDIO_BODY: usize = 8192;

pub(super) struct Opts {
    pub sample_rate: u32,
    /// After end-of-audio on close, how long to wait for `turn.end`.
    pub close_wait: Duration,
    /// Audio kept while a finalized turn drains (it goes out in the next turn).
    pub hold_limit: usize,
}

enum End {
    Normal,
    Failed(SttError),
    ConsumerGone,
}

#[derive(PartialEq)]
enum Turn {
    /// Audio flows under the current request id.
    Open,
    /// End-of-audio sent; results of this turn still arrive until `turn.end`.
    Ending,
}

struct Pump {
    ws: Ws,
    events: mpsc::Sender<SttEvent>,
    opts: Opts,
    request_id: String,
    turn: Turn,
    /// PCM bytes sent before the current turn began: service offsets restart at each turn.
    turn_base_bytes: u64,
    audio_bytes: u64,
    /// Audio that arrived while a finalized turn was draining.
    held: BytesMut,
    frame: BytesMut,
    text: String,
    /// End of the last recognized phrase since speech started, for `UtteranceEnd`.
    last_phrase_end_s: Option<f64>,
}

pub(super) async fn run(ws: Ws, input: mpsc::Receiver<SttInput>, events: mpsc::Sender<SttEvent>, opts: Opts) {
    let mut p = Pump {
        ws,
        events,
        request_id: usp::new_id(),
        turn: Turn::Open,
        turn_base_bytes: 0,
        audio_bytes: 0,
        held: BytesMut::new(),
        frame: BytesMut::with_capacity(1024),
        text: String::new(),
        last_phrase_end_s: None,
        opts,
    };
    let end = p.drive(input).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), p.ws.close(None)).await;
    if let End::ConsumerGone = end {
        return;
    }
    if let End::Failed(e) = end {
        tracing::warn!(code = e.code(), error = %e, "azure stt stream failed");
        if p.events.send(SttEvent::Error(e)).await.is_err() {
            return;
        }
    }
    // Azure reports no usage: bill the audio this stream sent.
    let audio_ms = p.audio_bytes * 1000 / p.bytes_per_s();
    let _ = p.events.send(SttEvent::Usage { audio_ms, estimated: true }).await;
}

impl Pump {
    fn bytes_per_s(&self) -> u64 {
        u64::from(self.opts.sample_rate.max(1)) * 2
    }

    async fn drive(&mut self, mut input: mpsc::Receiver<SttInput>) -> End {
        let config = wire::speech_config(self.opts.sample_rate);
        if let Err(e) = self.send_text("speech.config", &config).await {
            return self.after_send_error(e).await;
        }
        if let Err(e) = self.begin_turn(false).await {
            return self.after_send_error(e).await;
        }
        let close_deadline = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(close_deadline);
        let mut closing = false;
        loop {
            let step = tokio::select! {
                biased;
                msg = self.ws.next() => match msg {
                    None if closing => return End::Normal,
                    None => return End::Failed(lost()),
                    Some(Err(tungstenite::Error::ConnectionClosed)) if closing => return End::Normal,
                    Some(Err(e)) => return End::Failed(SttError::Protocol(e.to_string())),
                    Some(Ok(Message::Text(text))) => match self.on_text(&text, closing).await {
                        Ok(Some(end)) => return end,
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    },
                    Some(Ok(Message::Close(frame))) => return closed(frame),
                    Some(Ok(_)) => Ok(()),
                },
                inp = input.recv(), if !closing => match inp {
                    Some(SttInput::Audio(pcm)) => self.on_audio(&pcm).await,
                    Some(SttInput::Finalize) => self.end_turn().await,
                    // No keep-alive message exists in this protocol; a ping keeps proxies awake.
                    Some(SttInput::KeepAlive) => self.ws.send(Message::Ping(Bytes::new())).await,
                    Some(SttInput::Close) | None => {
                        closing = true;
                        close_deadline.as_mut().reset(Instant::now() + self.opts.close_wait);
                        self.end_turn().await
                    }
                },
                () = &mut close_deadline, if closing => {
                    tracing::debug!("azure stt: no turn.end after end of audio; giving up waiting");
                    return End::Normal;
                },
            };
            if let Err(e) = step {
                return self.after_send_error(e).await;
            }
        }
    }

    /// One service message. `Ok(Some(end))` stops the stream.
    async fn on_text(&mut self, frame: &str, closing: bool) -> Result<Option<End>, tungstenite::Error> {
        let (headers, body) = match usp::parse_text(frame) {
            Ok(parts) => parts,
            Err(e) => return Ok(Some(End::Failed(SttError::Protocol(e.reason().into())))),
        };
        // Late messages of a turn we already left are the SDK's to drop too.
        if !headers.request_id.is_some_and(|id| id.eq_ignore_ascii_case(&self.request_id)) {
            return Ok(None);
        }
        let service = match wire::decode(headers.path.unwrap_or(""), body) {
            Ok(s) => s,
            Err(e) => return Ok(Some(End::Failed(e))),
        };
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
                Status::Failed(e) => return Ok(Some(End::Failed(e))),
            },
            Service::SpeechEnd { offset } => {
                let last_word_end_s = self.last_phrase_end_s.take().unwrap_or_else(|| self.at(offset));
                Some(SttEvent::UtteranceEnd { last_word_end_s })
            }
            Service::TurnEnd => {
                if closing && self.held.is_empty() {
                    return Ok(Some(End::Normal));
                }
                // Continuous recognition: a turn the service ended (or we finalized) is followed
                // by a new one under a fresh request id.
                self.begin_turn(true).await?;
                if !self.held.is_empty() {
                    let held = self.held.split().freeze();
                    self.on_audio(&held).await?;
                }
                if closing {
                    self.end_turn().await?;
                }
                None
            }
        };
        if let Some(ev) = event {
            if self.events.send(ev).await.is_err() {
                return Ok(Some(End::ConsumerGone));
            }
        }
        Ok(None)
    }

    /// Stream seconds of a turn-relative tick offset, to the millisecond.
    fn at(&self, ticks: u64) -> f64 {
        let base = self.turn_base_bytes as f64 / self.bytes_per_s() as f64;
        ((base + ticks as f64 / TICKS_PER_S) * 1000.0).round() / 1000.0
    }

    /// `speech.context` and the WAV header under a request id; a fresh id for every turn after
    /// the first (the service closes 1002 on a reused one).
    async fn begin_turn(&mut self, new_id: bool) -> Result<(), tungstenite::Error> {
        if new_id {
            self.request_id = usp::new_id();
        }
        self.turn = Turn::Open;
        self.turn_base_bytes = self.audio_bytes;
        self.send_text("speech.context", wire::SPEECH_CONTEXT).await?;
        let header = usp::wav_header(usp::WAVE_PCM, self.opts.sample_rate, 16);
        self.send_audio_message(Some("audio/x-wav"), &header).await
    }

    /// End-of-audio for the current turn: an `audio` message with an empty body.
    async fn end_turn(&mut self) -> Result<(), tungstenite::Error> {
        if self.turn == Turn::Ending {
            return Ok(());
        }
        self.turn = Turn::Ending;
        self.send_audio_message(None, &[]).await
    }

    async fn on_audio(&mut self, pcm: &[u8]) -> Result<(), tungstenite::Error> {
        if self.turn == Turn::Ending {
            let room = self.opts.hold_limit.saturating_sub(self.held.len());
            if room < pcm.len() {
                tracing::warn!(dropped = pcm.len() - room, "azure stt: audio held during a finalize overflowed");
            }
            self.held.extend_from_slice(pcm.get(..room.min(pcm.len())).unwrap_or_default());
            return Ok(());
        }
        for chunk in pcm.chunks(MAX_AUDIO_BODY) {
            self.send_audio_message(None, chunk).await?;
            self.audio_bytes += chunk.len() as u64;
        }
        Ok(())
    }

    async fn send_audio_message(&mut self, content_type: Option<&str>, body: &[u8]) -> Result<(), tungstenite::Error> {
        // Reclaims the previous frame's allocation once the socket has let go of it.
        self.frame.reserve(200 + body.len());
        usp::write_binary(&mut self.frame, "audio", &self.request_id, content_type, None, body);
        let frame = self.frame.split().freeze();
        self.ws.send(Message::Binary(frame)).await
    }

    async fn send_text(&mut self, path: &str, body: &str) -> Result<(), tungstenite::Error> {
        usp::write_text(&mut self.text, path, &self.request_id, Some("application/json"), body);
        self.ws.send(Message::text(self.text.as_str())).await
    }

    /// A write failed, usually because the service closed first: prefer its close frame's reason.
    async fn after_send_error(&mut self, e: tungstenite::Error) -> End {
        let deadline = Instant::now() + Duration::from_millis(500);
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            match msg {
                Ok(Message::Close(frame)) => return closed(frame),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        End::Failed(match e {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => lost(),
            other => SttError::Protocol(other.to_string()),
        })
    }
}

fn lost() -> SttError {
    SttError::Closed { code: 1006, reason: "connection lost".into() }
}

fn closed(frame: Option<tungstenite::protocol::CloseFrame>) -> End {
    match frame {
        None => End::Normal,
        Some(f) if f.code == CloseCode::Normal => End::Normal,
        Some(f) => End::Failed(SttError::Closed { code: f.code.into(), reason: f.reason.to_string() }),
    }
}
