//! The gateway writer: owns the gateway's sink (websocket or AudioSocket TCP), paces agent
//! audio out in real time 20 ms frames, and on barge-in clears both its own queue and the
//! gateway's buffer.
//!
//! Audio arrives per TTS chunk (a few hundred ms), not per frame, and waits in one FIFO; the
//! writer reports how much of each turn was actually sent, which is what the caller heard.

use crate::transport::{GatewaySink, WireEncoder};
use crate::SessionEvent;
use axum::extract::ws::Message;
use futures::SinkExt;
use media::Pacer;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub(crate) enum WriterCmd {
    Audio {
        turn: u64,
        samples: Vec<i16>,
    },
    /// No more audio for `turn`: mark it, and report when it has been played.
    EndOfTurn {
        turn: u64,
    },
    /// Barge-in: drop queued audio of `turn` and earlier, clear the gateway, reply with the
    /// milliseconds of `turn` that were sent before the clear.
    Clear {
        turn: u64,
        reply: oneshot::Sender<u64>,
    },
    Event(SessionEvent),
}

#[derive(Debug)]
pub(crate) enum WriterEvent {
    FirstFrame { turn: u64 },
    PlaybackDone { turn: u64, played_ms: u64 },
}

enum Segment {
    Audio { turn: u64, samples: Vec<i16>, pos: usize },
    End { turn: u64 },
}

pub(crate) struct Writer {
    sink: GatewaySink,
    enc: Box<dyn WireEncoder>,
    queue: VecDeque<Segment>,
    frame: Vec<i16>,
    frame_len: usize,
    cleared_upto: Option<u64>,
    cur_turn: Option<u64>,
    cur_sent: u64,
    events: mpsc::Sender<WriterEvent>,
    sink_ok: bool,
}

impl Writer {
    pub(crate) fn new(sink: GatewaySink, enc: Box<dyn WireEncoder>, events: mpsc::Sender<WriterEvent>) -> Self {
        let frame_len = media::samples_per_20ms(enc.output_rate());
        Self {
            sink,
            enc,
            queue: VecDeque::new(),
            frame: Vec::with_capacity(frame_len),
            frame_len,
            cleared_upto: None,
            cur_turn: None,
            cur_sent: 0,
            events,
            sink_ok: true,
        }
    }

    fn has_audio(&self) -> bool {
        !self.queue.is_empty()
    }

    fn sent_ms(&self, samples: u64) -> u64 {
        samples * 1000 / u64::from(self.enc.output_rate().max(1))
    }

    async fn send(&mut self, msg: Message) {
        if self.sink_ok && self.sink.send(msg).await.is_err() {
            // The gateway went away; the reader will notice and end the session.
            self.sink_ok = false;
        }
    }

    /// Run until the command channel closes (session over). Then closes the socket.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<WriterCmd>) {
        let mut pacer = Pacer::new(Duration::from_millis(20));
        loop {
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        let was_idle = !self.has_audio();
                        self.handle(cmd).await;
                        if was_idle && self.has_audio() {
                            pacer.reset();
                        }
                    }
                    None => break,
                },
                _ = pacer.wait_next(), if self.has_audio() => self.next_frame().await,
            }
        }
        let _ = self.sink.send(Message::Close(None)).await;
    }

    async fn handle(&mut self, cmd: WriterCmd) {
        match cmd {
            WriterCmd::Audio { turn, samples } => {
                if self.cleared_upto.is_some_and(|c| turn <= c) || samples.is_empty() {
                    return;
                }
                self.queue.push_back(Segment::Audio { turn, samples, pos: 0 });
            }
            WriterCmd::EndOfTurn { turn } => {
                if self.cleared_upto.is_some_and(|c| turn <= c) {
                    return;
                }
                self.queue.push_back(Segment::End { turn });
            }
            WriterCmd::Clear { turn, reply } => {
                self.queue.retain(|s| match s {
                    Segment::Audio { turn: t, .. } | Segment::End { turn: t } => *t > turn,
                });
                self.cleared_upto = Some(turn);
                let played = if self.cur_turn == Some(turn) { self.sent_ms(self.cur_sent) } else { 0 };
                if let Some(m) = self.enc.encode_clear() {
                    self.send(m).await;
                }
                let _ = reply.send(played);
            }
            WriterCmd::Event(ev) => {
                if let Some(m) = self.enc.encode_event(&ev) {
                    self.send(m).await;
                }
            }
        }
    }

    /// Send one 20 ms frame from the queue, and any turn end reached right after it.
    async fn next_frame(&mut self) {
        self.frame.clear();
        let mut frame_turn = None;
        while self.frame.len() < self.frame_len {
            match self.queue.front_mut() {
                Some(Segment::Audio { turn, samples, pos }) => {
                    if frame_turn.is_some_and(|t| t != *turn) {
                        break;
                    }
                    frame_turn = Some(*turn);
                    let take = (self.frame_len - self.frame.len()).min(samples.len() - *pos);
                    self.frame.extend_from_slice(&samples[*pos..*pos + take]);
                    *pos += take;
                    if *pos >= samples.len() {
                        self.queue.pop_front();
                    }
                }
                _ => break,
            }
        }
        if let Some(turn) = frame_turn {
            // Pad the last frame of a turn with silence: gateways expect whole frames.
            self.frame.resize(self.frame_len, 0);
            if self.cur_turn != Some(turn) {
                self.cur_turn = Some(turn);
                self.cur_sent = 0;
                let _ = self.events.try_send(WriterEvent::FirstFrame { turn });
            }
            self.cur_sent += self.frame_len as u64;
            let msg = self.enc.encode_audio(&self.frame);
            self.send(msg).await;
            metrics::counter!(crate::metrics::FRAMES, "direction" => "out").increment(1);
        }
        while let Some(Segment::End { turn }) = self.queue.front() {
            let turn = *turn;
            self.queue.pop_front();
            if let Some(m) = self.enc.encode_mark(&format!("turn-{turn}")) {
                self.send(m).await;
            }
            let played_ms = if self.cur_turn == Some(turn) { self.sent_ms(self.cur_sent) } else { 0 };
            let _ = self.events.try_send(WriterEvent::PlaybackDone { turn, played_ms });
        }
    }
}
