//! The gateway reader: decode each message, bound caller audio by the wall clock, run the
//! caller's VAD (barge-in), resample and batch audio for STT. Never awaits a provider: a full
//! STT queue drops the packet and counts it.

use crate::output::WriterCmd;
use crate::transport::{GatewayStream, Inbound, TransportError, WireCodec};
use crate::turn::Control;
use crate::{metrics as m, SessionEvent};
use futures::StreamExt;
use media::{Resampler, Vad, VadConfig, VadEvent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stt::SttInput;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Bad messages tolerated in one call before it is closed.
const MAX_BAD_MESSAGES: u32 = 50;

/// Caller audio goes to STT in packets of this many ms (five gateway frames): a fifth of the
/// channel sends, socket writes and wake-ups of one packet per frame, at the top of the
/// 20–100 ms providers recommend (60 ms packets made a third more `sendto` calls for the same
/// answer and barge-in times: bench/README.md, session 15). At the end of an utterance, where
/// a delay would delay the answer, frames go one by one instead ([`PAUSE_FRAMES`]).
const STT_BATCH_MS: u32 = 100;

/// Once a pause in the caller's speech is this many frames long, and until [`ENDPOINT_TAIL`]
/// frames after the VAD ends the utterance, audio goes to STT frame by frame: the provider's
/// endpointing counts silence on the audio it has, so a packet held back here would hold back
/// the final transcript, and the answer with it.
const PAUSE_FRAMES: u32 = 3;
const ENDPOINT_TAIL: u32 = 10;

/// The caller's VAD: speech after two loud frames (40 ms), so a barge-in `clear` goes out about
/// 20 ms after the first frame of speech arrives.
const CALLER_VAD: VadConfig =
    VadConfig { min_speech_dbfs: -45.0, above_floor_db: 12.0, start_frames: 2, hangover_frames: 15 };

/// How the gateway side ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GatewayEnd {
    Stop,
    Disconnected,
    /// Too many bad messages; the last one's close code (1008 policy, 1003 unsupported data).
    TooManyErrors(u16),
    /// A message over the size limit (1009).
    TooBig,
    ProviderFailed,
    IdleTimeout,
    MaxDuration,
}

impl GatewayEnd {
    /// The close frame for the gateway: the documented code, and the end reason.
    pub(crate) fn close_code(self, reason: &str) -> (u16, String) {
        let code = match self {
            Self::TooManyErrors(code) => code,
            Self::TooBig => 1009,
            Self::ProviderFailed if reason == "server_shutdown" => 1001,
            // Ends the agent chose (funds, its `end_call` and `transfer_call` tools) are normal.
            Self::ProviderFailed
                if !matches!(reason, "insufficient_funds" | "hangup" | "agent_ended" | "transferred") =>
            {
                1011
            }
            _ => 1000,
        };
        (code, reason.chars().take(123).collect())
    }

    /// Whether the caller's side ended the call (nothing to tell the carrier).
    pub(crate) fn by_caller(self) -> bool {
        matches!(self, Self::Stop | Self::Disconnected)
    }
}

impl std::fmt::Display for GatewayEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stop => "hangup",
            Self::Disconnected => "gateway_disconnected",
            Self::TooManyErrors(_) => "too_many_bad_messages",
            Self::TooBig => "message_too_big",
            Self::ProviderFailed => "provider_failed",
            Self::IdleTimeout => "idle_timeout",
            Self::MaxDuration => "max_duration",
        })
    }
}

/// The close code a bad message earns: data the protocol does not carry is 1003, anything
/// else that breaks the protocol is 1008.
fn violation_code(e: &TransportError) -> u16 {
    match e {
        TransportError::BinaryNotAllowed | TransportError::UnsupportedFormat(_) => 1003,
        _ => 1008,
    }
}

/// What bounds a call on the wall clock.
pub(crate) struct Limits {
    pub idle: Duration,
    pub jitter: Duration,
    pub max_call: Duration,
    /// When the call started (its `start`): audio buffered while the session was being set up
    /// counts against the time since then, not since the reader began.
    pub since: Instant,
}

/// Where the reader's output goes.
pub(crate) struct ReaderLinks {
    pub stt_switch: watch::Receiver<mpsc::Sender<SttInput>>,
    pub control: mpsc::Sender<Control>,
    pub stt_audio_ms: Arc<AtomicU64>,
    pub writer: mpsc::Sender<WriterCmd>,
}

/// The reader's state for one call; its buffers are reused for every frame.
pub(crate) struct Reader {
    gateway: &'static str,
    links: ReaderLinks,
    stt_audio: mpsc::Sender<SttInput>,
    in_rate: u32,
    stt_rate: u32,
    resampler: Resampler,
    vad: Vad,
    /// When the current run of loud frames began: barge-in latency counts from the first
    /// frame of speech, not from the VAD's decision.
    loud_since: Option<Instant>,
    vad_frame: usize,
    stt_batch_samples: usize,
    /// Frames, this one included, to send to STT unbatched (see [`PAUSE_FRAMES`]).
    unbatched: u32,
    up: Vec<i16>,
    /// One buffer for every packet sent to STT: each is split off as `Bytes`, and once the STT
    /// task has sent it the space is reclaimed, so steady state allocates nothing.
    le: bytes::BytesMut,
    sent_samples: u64,
    bad: u32,
    limits: Limits,
    began: Instant,
    last_media: Instant,
    received: u64,
    /// Frames taken since the counter was last added to: it is one atomic shared by every
    /// call, so it is added to once per STT packet (and at the end), not once per frame.
    frames_taken: u64,
    frames_in: metrics::Counter,
    dropped: metrics::Counter,
    ahead: metrics::Counter,
}

impl Reader {
    pub(crate) fn new(
        codec: &dyn WireCodec,
        stt_rate: Option<u32>,
        mut links: ReaderLinks,
        limits: Limits,
    ) -> Result<Self, media::ResampleError> {
        let gateway = codec.gateway();
        let in_rate = codec.input_rate();
        let stt_rate = stt_rate.unwrap_or(in_rate);
        let stt_audio = links.stt_switch.borrow_and_update().clone();
        let began = limits.since;
        Ok(Self {
            gateway,
            links,
            stt_audio,
            in_rate,
            stt_rate,
            resampler: Resampler::new(in_rate, stt_rate)?,
            vad: Vad::new(CALLER_VAD),
            loud_since: None,
            vad_frame: media::samples_per_20ms(in_rate),
            stt_batch_samples: (stt_rate * STT_BATCH_MS / 1000) as usize,
            unbatched: 0,
            up: Vec::with_capacity(4096),
            le: bytes::BytesMut::with_capacity(16 * 1024),
            sent_samples: 0,
            bad: 0,
            limits,
            began,
            last_media: Instant::now(),
            received: 0,
            frames_taken: 0,
            frames_in: metrics::counter!(m::FRAMES, "direction" => "in", "gateway" => gateway),
            dropped: metrics::counter!(m::FRAMES_DROPPED, "queue" => "stt_in"),
            ahead: metrics::counter!(m::GATEWAY_FRAMES_DROPPED, "gateway" => gateway, "reason" => "ahead_of_clock"),
        })
    }

    /// Read the gateway until the call ends, one way or another.
    pub(crate) async fn run(
        mut self,
        stream: &mut GatewayStream,
        codec: &mut dyn WireCodec,
        pcm: &mut Vec<i16>,
        cancel: &CancellationToken,
    ) -> GatewayEnd {
        // One cancellation future for the whole call: re-creating it per frame would register
        // and unregister a waiter (a lock) 50 times a second.
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let max_call = tokio::time::sleep_until((self.began + self.limits.max_call).into());
        tokio::pin!(max_call);
        let mut idle_check = tokio::time::interval(Duration::from_secs(1));
        idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            // The caller's next message first: the other branches are polled only when there is
            // none, not once more for every frame (the socket's cooperative budget still yields
            // to them under a flood).
            let msg = tokio::select! {
                biased;
                m = stream.next() => m,
                _ = &mut cancelled => return GatewayEnd::ProviderFailed,
                _ = &mut max_call => return GatewayEnd::MaxDuration,
                _ = idle_check.tick() => {
                    if self.last_media.elapsed() >= self.limits.idle {
                        return GatewayEnd::IdleTimeout;
                    }
                    continue;
                }
            };
            let msg = match msg {
                Some(Ok(m)) => m,
                Some(Err(e)) => return self.socket_error(&e),
                None => return GatewayEnd::Disconnected,
            };
            if let Some(end) = self.on_message(codec.decode(&msg, pcm), pcm) {
                return end;
            }
        }
    }

    fn socket_error(&self, e: &axum::Error) -> GatewayEnd {
        // tungstenite reports an oversized message as a capacity error.
        let too_big = e.to_string().contains("Message too long");
        let code = if too_big { "message_too_big" } else { "socket" };
        tracing::warn!(error = %e, code, "gateway socket error");
        metrics::counter!(m::GATEWAY_ERRORS, "gateway" => self.gateway, "code" => code).increment(1);
        if too_big {
            GatewayEnd::TooBig
        } else {
            GatewayEnd::Disconnected
        }
    }

    fn on_message(&mut self, decoded: Result<Inbound, TransportError>, pcm: &[i16]) -> Option<GatewayEnd> {
        match decoded {
            Ok(Inbound::Audio) => self.on_audio(pcm),
            Ok(Inbound::Stop) => return Some(GatewayEnd::Stop),
            Ok(Inbound::Mark(name)) => {
                let _ = self.links.control.try_send(Control::Mark(name));
            }
            Ok(Inbound::Dtmf(d)) => {
                let _ = self.links.control.try_send(Control::Dtmf(d));
            }
            Ok(Inbound::Start(_)) => {
                tracing::warn!(code = "duplicate_start", "second start on one stream ignored");
                metrics::counter!(m::GATEWAY_ERRORS, "gateway" => self.gateway, "code" => "duplicate_start")
                    .increment(1);
            }
            Ok(Inbound::Connected) | Ok(Inbound::Ignore) => {}
            Err(e) => return self.on_bad_message(&e),
        }
        None
    }

    fn on_bad_message(&mut self, e: &TransportError) -> Option<GatewayEnd> {
        self.bad += 1;
        tracing::warn!(code = e.code(), "bad gateway message ignored: {e}");
        metrics::counter!(m::GATEWAY_ERRORS, "gateway" => self.gateway, "code" => e.code()).increment(1);
        let ev = SessionEvent::Error { code: e.code().to_string(), message: e.to_string() };
        let _ = self.links.writer.try_send(WriterCmd::Event(ev));
        (self.bad > MAX_BAD_MESSAGES).then(|| GatewayEnd::TooManyErrors(violation_code(e)))
    }

    /// One frame of caller audio: wall-clock bound, VAD, then STT.
    fn on_audio(&mut self, pcm: &[i16]) {
        let arrived = Instant::now();
        self.last_media = arrived;
        // Audio beyond real time (plus jitter) is dropped, so billed STT time never exceeds
        // the call's length.
        let allowed = (arrived - self.began + self.limits.jitter).as_millis() as u64 * u64::from(self.in_rate) / 1000;
        if self.received + pcm.len() as u64 > allowed {
            self.ahead.increment(1);
            return;
        }
        self.received += pcm.len() as u64;
        self.frames_taken += 1;
        self.detect_speech(pcm, arrived);
        self.feed_stt(pcm);
    }

    fn detect_speech(&mut self, pcm: &[i16], arrived: Instant) {
        for frame in pcm.chunks(self.vad_frame) {
            let ev = self.vad.push(frame);
            if self.vad.loud_run() == 1 {
                self.loud_since = Some(arrived);
            }
            match ev {
                VadEvent::SpeechStart => {
                    let at = self.loud_since.unwrap_or(arrived);
                    let _ = self.links.control.try_send(Control::SpeechStart { at });
                }
                VadEvent::SpeechEnd => {
                    let _ = self.links.control.try_send(Control::SpeechEnd);
                }
                VadEvent::None => {}
            }
            self.unbatched = match ev {
                // This frame and the tail after it.
                VadEvent::SpeechEnd => ENDPOINT_TAIL + 1,
                _ if self.vad.is_speaking() => u32::from(self.vad.quiet_run() >= PAUSE_FRAMES),
                _ => self.unbatched.saturating_sub(1),
            };
        }
    }

    fn feed_stt(&mut self, pcm: &[i16]) {
        self.up.clear();
        if let Err(e) = self.resampler.process(pcm, &mut self.up) {
            tracing::warn!(error = %e, "input resampling failed");
            return;
        }
        let at = self.le.len();
        self.le.resize(at + self.up.len() * 2, 0);
        media::l16::write_le(&self.up, &mut self.le[at..]);
        if self.le.len() / 2 < self.stt_batch_samples && self.unbatched == 0 {
            return;
        }
        let batch = self.le.len() / 2;
        self.frames_in.increment(std::mem::take(&mut self.frames_taken));
        if self.links.stt_switch.has_changed().unwrap_or(false) {
            // STT failed over: audio goes to the fallback's stream from here on.
            self.stt_audio = self.links.stt_switch.borrow_and_update().clone();
        }
        match self.stt_audio.try_send(SttInput::Audio(self.le.split().freeze())) {
            Ok(()) => {
                self.sent_samples += batch as u64;
                let ms = self.sent_samples * 1000 / u64::from(self.stt_rate);
                self.links.stt_audio_ms.store(ms, Ordering::Relaxed);
            }
            Err(_) => self.dropped.increment(1),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.frames_in.increment(self.frames_taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TwilioCodec;

    /// A reader on a Twilio call (8 kHz, STT at 8 kHz) and the STT packets it sends.
    fn reader() -> (Reader, mpsc::Receiver<SttInput>, mpsc::Receiver<Control>) {
        let (stt_tx, stt_rx) = mpsc::channel(256);
        let (_switch_tx, stt_switch) = watch::channel(stt_tx);
        let (control, control_rx) = mpsc::channel(16);
        let (writer, _writer_rx) = mpsc::channel(16);
        let links = ReaderLinks { stt_switch, control, stt_audio_ms: Arc::default(), writer };
        // A generous jitter: frames pushed faster than real time are not "ahead of the clock".
        let limits = Limits {
            idle: Duration::from_secs(60),
            jitter: Duration::from_secs(3600),
            max_call: Duration::from_secs(3600),
            since: Instant::now(),
        };
        (Reader::new(&TwilioCodec::new(), None, links, limits).unwrap(), stt_rx, control_rx)
    }

    /// Samples of each STT packet sent so far.
    fn packets(rx: &mut mpsc::Receiver<SttInput>) -> Vec<usize> {
        std::iter::from_fn(|| match rx.try_recv() {
            Ok(SttInput::Audio(b)) => Some(b.len() / 2),
            Ok(_) => Some(0),
            Err(_) => None,
        })
        .collect()
    }

    #[test]
    fn audio_is_batched_except_where_an_utterance_may_end() {
        let (mut r, mut stt, mut control) = reader();
        let loud: Vec<i16> = (0..160).map(|i| if i % 2 == 0 { 8000 } else { -8000 }).collect();
        let quiet = vec![0i16; 160];
        for _ in 0..30 {
            r.on_audio(&loud);
        }
        assert!(matches!(control.try_recv(), Ok(Control::SpeechStart { .. })));
        // Speech: 100 ms packets (five 20 ms frames).
        assert_eq!(packets(&mut stt), [800; 6]);
        // The first two frames of a pause are batched; from the third on, each frame goes alone,
        // through the hangover and the tail after the VAD ends the utterance.
        let frames = CALLER_VAD.hangover_frames + ENDPOINT_TAIL + 10;
        for _ in 0..frames {
            r.on_audio(&quiet);
        }
        assert!(matches!(control.try_recv(), Ok(Control::SpeechEnd)));
        let got = packets(&mut stt);
        let alone = (CALLER_VAD.hangover_frames - PAUSE_FRAMES + ENDPOINT_TAIL) as usize;
        assert_eq!(got[0], 480, "{got:?}");
        assert!(got[1..=alone].iter().all(|&n| n == 160), "{got:?}");
        // Then silence is batched again, and no audio is lost.
        assert_eq!(got[alone + 1..], [800, 800], "{got:?}");
        assert!(r.le.is_empty());
    }
}
