//! The gateway writer: owns the gateway's sink (websocket or AudioSocket TCP), sends agent audio
//! in 20 ms frames on the gateway's playout clock, and on barge-in clears both its own queue
//! and the gateway's buffer.
//!
//! Audio arrives per TTS chunk (a few hundred ms), not per frame, and waits in one FIFO. Gateways
//! that queue media get a few frames ahead in one socket write ([`Lead::QUEUED`]); the others
//! get each frame as it plays. The writer reports how much of each turn was actually played,
//! which is what the caller heard.

use crate::transport::{GatewaySink, WireEncoder};
use crate::SessionEvent;
use axum::extract::ws::Message;
use futures::SinkExt;
use media::Playout;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

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
    /// milliseconds of `turn` that were played before the clear.
    Clear {
        turn: u64,
        reply: oneshot::Sender<u64>,
    },
    Event(SessionEvent),
    /// The close frame to end the socket with (code and reason), once the queue is done.
    Close {
        code: u16,
        reason: String,
    },
}

#[derive(Debug)]
pub(crate) enum WriterEvent {
    FirstFrame { turn: u64 },
    PlaybackDone { turn: u64, played_ms: u64 },
}

enum Segment {
    Audio {
        turn: u64,
        samples: Vec<i16>,
        pos: usize,
    },
    /// `marked` once the gateway has been sent the turn's mark; reported when played out.
    End {
        turn: u64,
        marked: bool,
    },
}

pub(crate) struct Writer {
    sink: GatewaySink,
    enc: Box<dyn WireEncoder>,
    queue: VecDeque<Segment>,
    frame: Vec<i16>,
    frame_len: usize,
    playout: Playout,
    cleared_upto: Option<u64>,
    cur_turn: Option<u64>,
    cur_sent: u64,
    events: mpsc::Sender<WriterEvent>,
    sink_ok: bool,
    /// Messages fed to the sink since the last flush.
    unflushed: bool,
    /// Audio frames fed since the last flush: counted once per socket write, not per frame (the
    /// counter is one atomic shared by every call).
    frames_fed: u64,
    frames_out: metrics::Counter,
    close: Option<(u16, String)>,
}

impl Writer {
    pub(crate) fn new(
        gateway: &'static str,
        sink: GatewaySink,
        enc: Box<dyn WireEncoder>,
        events: mpsc::Sender<WriterEvent>,
    ) -> Self {
        let frame_len = media::samples_per_20ms(enc.output_rate());
        let playout = Playout::new(Duration::from_millis(20), enc.lead());
        Self {
            sink,
            enc,
            queue: VecDeque::new(),
            frame: Vec::with_capacity(frame_len),
            frame_len,
            playout,
            cleared_upto: None,
            cur_turn: None,
            cur_sent: 0,
            events,
            sink_ok: true,
            unflushed: false,
            frames_fed: 0,
            frames_out: metrics::counter!(crate::metrics::FRAMES, "direction" => "out", "gateway" => gateway),
            close: None,
        }
    }

    fn sent_ms(&self, samples: u64) -> u64 {
        samples * 1000 / u64::from(self.enc.output_rate().max(1))
    }

    /// Milliseconds of the current turn the caller has heard: sent, less what the gateway
    /// still has queued.
    fn played_ms(&self, now: Instant) -> u64 {
        let ahead = u64::try_from(self.playout.ahead(now).as_millis()).unwrap_or(u64::MAX);
        self.sent_ms(self.cur_sent).saturating_sub(ahead)
    }

    /// When there is something to do next: send audio, or report a turn played out.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        match self.queue.front()? {
            Segment::Audio { .. } => Some(self.playout.next_send(now)),
            Segment::End { .. } => Some(self.playout.played_out_at(now)),
        }
    }

    /// Queue a message; [`Self::flush`] writes everything queued in one go.
    async fn feed(&mut self, msg: Message) {
        if self.sink_ok && self.sink.feed(msg).await.is_err() {
            // The gateway went away; the reader will notice and end the session.
            self.sink_ok = false;
        }
        self.unflushed = self.sink_ok;
    }

    async fn flush(&mut self) {
        if self.unflushed && self.sink.flush().await.is_err() {
            self.sink_ok = false;
        }
        self.unflushed = false;
        self.frames_out.increment(std::mem::take(&mut self.frames_fed));
    }

    /// Run until the command channel closes (session over). Then closes the socket.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<WriterCmd>) {
        let sleep = tokio::time::sleep_until(Instant::now());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let wake = self.next_wake(now);
            // Due now: send without a trip through the timer, which only fires on its next
            // tick (up to a millisecond, more on a busy runtime).
            if wake.is_some_and(|w| w <= now) {
                self.pump(now).await;
                self.flush().await;
                continue;
            }
            if wake != armed {
                if let Some(w) = wake {
                    sleep.as_mut().reset(w);
                }
                armed = wake;
            }
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.pump(Instant::now()).await;
                }
            }
            self.flush().await;
        }
        let frame =
            self.close.take().map(|(code, reason)| axum::extract::ws::CloseFrame { code, reason: reason.into() });
        let _ = self.sink.send(Message::Close(frame)).await;
    }

    async fn handle(&mut self, cmd: WriterCmd) {
        match cmd {
            WriterCmd::Close { code, reason } => self.close = Some((code, reason)),
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
                self.queue.push_back(Segment::End { turn, marked: false });
            }
            WriterCmd::Clear { turn, reply } => {
                self.queue.retain(|s| match s {
                    Segment::Audio { turn: t, .. } | Segment::End { turn: t, .. } => *t > turn,
                });
                self.cleared_upto = Some(turn);
                let played = if self.cur_turn == Some(turn) { self.played_ms(Instant::now()) } else { 0 };
                self.playout.clear();
                if let Some(m) = self.enc.encode_clear() {
                    self.feed(m).await;
                }
                let _ = reply.send(played);
            }
            WriterCmd::Event(ev) => {
                if let Some(m) = self.enc.encode_event(&ev) {
                    self.feed(m).await;
                }
            }
        }
    }

    /// Send every frame due at `now`, mark turns whose audio has all been sent, and report
    /// those that have played out.
    async fn pump(&mut self, now: Instant) {
        loop {
            match self.queue.front_mut() {
                Some(Segment::Audio { .. }) => {
                    if !self.playout.take_slot(now) {
                        return;
                    }
                    self.next_frame().await;
                }
                Some(Segment::End { turn, marked }) => {
                    let turn = *turn;
                    if !*marked {
                        *marked = true;
                        if let Some(m) = self.enc.encode_mark(&format!("turn-{turn}")) {
                            self.feed(m).await;
                        }
                    }
                    if self.playout.played_out_at(now) > now {
                        return;
                    }
                    self.queue.pop_front();
                    let played_ms = if self.cur_turn == Some(turn) { self.sent_ms(self.cur_sent) } else { 0 };
                    let _ = self.events.try_send(WriterEvent::PlaybackDone { turn, played_ms });
                }
                None => return,
            }
        }
    }

    /// Send one 20 ms frame from the queue (the front segment is audio).
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
        let Some(turn) = frame_turn else { return };
        // Pad the last frame of a turn with silence: gateways expect whole frames.
        self.frame.resize(self.frame_len, 0);
        if self.cur_turn != Some(turn) {
            self.cur_turn = Some(turn);
            self.cur_sent = 0;
            let _ = self.events.try_send(WriterEvent::FirstFrame { turn });
        }
        self.cur_sent += self.frame_len as u64;
        let msg = self.enc.encode_audio(&self.frame);
        self.feed(msg).await;
        self.frames_fed += 1;
    }
}
