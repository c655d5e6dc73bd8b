//! The STT side of the shared socket client ([`wsclient`]): every websocket adapter (Deepgram
//! v1 and Flux, AssemblyAI, Soniox, ElevenLabs, Cartesia, Gladia, Azure, Transcribe) is a
//! [`Dialect`] run by one [`Session`] on wsclient's frame loop. A dialect supplies the
//! provider's framing (and may batch audio, which AssemblyAI's 50 ms minimum needs); the JSON
//! adapters describe theirs through the simpler [`Wire`] and run as [`Strict`]. This module owns
//! the invariants of [`crate::SttEvent`] (Error before the closing Usage, estimated usage when
//! the provider's figure never came), plus the URL and HTTP helpers those adapters share.

use crate::{SttError, SttEvent, SttInput, SttStream};
use bytes::Bytes;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use url::Url;
use wsclient::tungstenite::{self, protocol::frame::coding::CloseCode, protocol::CloseFrame, Message};
use wsclient::{Flow as Step, Io, Ws};

/// Audio queue depth: 64 × 20 ms ≈ 1.3 s of slack before the caller feels backpressure.
const AUDIO_QUEUE: usize = 64;
/// Event queue depth: a few results per second of speech.
const EVENT_QUEUE: usize = 64;
/// After a failed write, how long to wait for the close frame that explains it.
const SEND_FAIL_WAIT: Duration = Duration::from_millis(500);

/// What a provider message meant for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The provider said the stream is over (its summary came, `done`, `end_session`, last
    /// commit after close); stop reading.
    Finished,
}

/// One provider's framing. Messages to send are pushed onto `out`, events onto `events`.
pub(crate) trait Dialect: Send + 'static {
    /// For log lines.
    const NAME: &'static str;
    /// Whether a `finalize` that sent something restarts the keep-alive clock.
    const FINALIZE_RESTARTS_KEEPALIVE: bool = true;
    /// Messages that open the stream (a config, a first turn), sent before any audio.
    fn start(&mut self, _out: &mut Vec<Message>) {}
    /// An audio frame from the caller; may be buffered (e.g. AssemblyAI's 50 ms minimum).
    fn audio(&mut self, pcm: Bytes, out: &mut Vec<Message>) -> Result<(), SttError> {
        out.push(Message::Binary(pcm));
        Ok(())
    }
    /// Flush buffered audio into a final result now.
    fn finalize(&mut self, out: &mut Vec<Message>);
    /// Keep an idle stream open; binary frames sent here count as audio.
    fn keepalive(&mut self, out: &mut Vec<Message>);
    /// Finish: the provider sends what remains and its summary, then closes (`Continue`, waited
    /// for up to the close wait), or there is nothing to wait for (`Finished`: close at once).
    fn close(&mut self, out: &mut Vec<Message>) -> Flow;
    /// One text frame from the provider; a dialect may answer it on `out`.
    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>, out: &mut Vec<Message>) -> Result<Flow, SttError>;
    /// One binary frame from the provider: ignored unless the provider frames its results so.
    fn binary(&mut self, _frame: &[u8], _events: &mut Vec<SttEvent>) -> Result<Flow, SttError> {
        Ok(Flow::Continue)
    }
    /// What a close frame (or the socket ending without one) means: by default normal when
    /// absent or 1000, or 1001 when we asked to close.
    fn closed(frame: Option<&CloseFrame>, closing: bool) -> Result<(), SttError> {
        match frame {
            None => Ok(()),
            Some(f) if f.code == CloseCode::Normal => Ok(()),
            Some(f) if closing && f.code == CloseCode::Away => Ok(()),
            Some(f) => Err(close_error(f)),
        }
    }
    /// The closing usage when no [`SttEvent::Usage`] came from [`Dialect::decode`]: by default
    /// estimated from the binary bytes sent.
    fn usage(&self, sent_bytes: u64, sample_rate: u32) -> SttEvent {
        SttEvent::Usage { audio_ms: pcm_ms(sent_bytes, sample_rate), estimated: true }
    }
}

/// The framing of the JSON-over-WebSocket adapters (ElevenLabs, Cartesia, Gladia), one message
/// at a time. Run it through [`Strict`].
pub(crate) trait Wire: Send + 'static {
    /// Short provider name for logs.
    const NAME: &'static str;
    fn audio(&mut self, pcm: Bytes) -> Message;
    /// `None` when the provider has no keep-alive message (the adapter then sends nothing).
    fn keepalive(&mut self) -> Option<Message>;
    fn finalize(&mut self) -> Option<Message>;
    /// The end-of-audio message; `None` means close the socket at once.
    fn close(&mut self) -> Option<Message>;
    /// Decode one text frame into `out` (never [`SttEvent::Usage`]: the pump reports usage).
    fn decode(&mut self, text: &str, out: &mut Vec<SttEvent>) -> Result<Flow, SttError>;
    /// Billable audio reported by the provider so far, if it reports any.
    fn provider_audio_ms(&self) -> Option<u64>;
}

/// One text frame through `w`: what it returned and the events it produced, for the wires' tests.
#[cfg(test)]
pub(crate) fn decode_one(w: &mut impl Wire, text: &str) -> (Result<Flow, SttError>, Vec<SttEvent>) {
    let mut out = Vec::new();
    (w.decode(text, &mut out), out)
}

/// A [`Wire`] as a [`Dialect`] with that family's rules: any close the adapter did not ask for
/// (or none at all) is an error, usage is the provider's figure or else estimated from the PCM
/// handed in, and only audio and keep-alive requests restart the keep-alive clock.
pub(crate) struct Strict<W> {
    wire: W,
    pcm_bytes: u64,
}

impl<W> Strict<W> {
    pub(crate) fn new(wire: W) -> Self {
        Self { wire, pcm_bytes: 0 }
    }
}

impl<W: Wire> Dialect for Strict<W> {
    const NAME: &'static str = W::NAME;
    const FINALIZE_RESTARTS_KEEPALIVE: bool = false;

    fn audio(&mut self, pcm: Bytes, out: &mut Vec<Message>) -> Result<(), SttError> {
        self.pcm_bytes += pcm.len() as u64;
        out.push(self.wire.audio(pcm));
        Ok(())
    }

    fn finalize(&mut self, out: &mut Vec<Message>) {
        out.extend(self.wire.finalize());
    }

    fn keepalive(&mut self, out: &mut Vec<Message>) {
        out.extend(self.wire.keepalive());
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Flow {
        match self.wire.close() {
            Some(m) => {
                out.push(m);
                Flow::Continue
            }
            None => Flow::Finished,
        }
    }

    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>, _out: &mut Vec<Message>) -> Result<Flow, SttError> {
        self.wire.decode(text, events)
    }

    fn closed(frame: Option<&CloseFrame>, closing: bool) -> Result<(), SttError> {
        strict_closed(frame, closing)
    }

    fn usage(&self, _sent_bytes: u64, sample_rate: u32) -> SttEvent {
        match self.wire.provider_audio_ms() {
            Some(audio_ms) => SttEvent::Usage { audio_ms, estimated: false },
            None => SttEvent::Usage { audio_ms: pcm_ms(self.pcm_bytes, sample_rate), estimated: true },
        }
    }
}

/// Close rules for providers that close only when asked: no close frame, or a normal one we
/// did not ask for, is an error.
pub(crate) fn strict_closed(frame: Option<&CloseFrame>, closing: bool) -> Result<(), SttError> {
    match frame {
        None if closing => Ok(()),
        None => Err(lost()),
        Some(f) if f.code == CloseCode::Normal && closing => Ok(()),
        Some(f) if f.code == CloseCode::Normal => {
            Err(SttError::Closed { code: 1000, reason: "closed before the stream ended".into() })
        }
        Some(f) => Err(SttError::Closed { code: f.code.into(), reason: f.reason.to_string() }),
    }
}

/// Close rules for providers whose close frame is the whole story: absent or 1000 is normal,
/// anything else is an error carrying the provider's code and reason.
pub(crate) fn plain_closed(frame: Option<&CloseFrame>) -> Result<(), SttError> {
    match frame {
        None => Ok(()),
        Some(f) if f.code == CloseCode::Normal => Ok(()),
        Some(f) => Err(SttError::Closed { code: f.code.into(), reason: f.reason.to_string() }),
    }
}

pub(crate) struct Opts {
    pub sample_rate: u32,
    /// Keep-alive after this long without sending anything.
    pub keepalive_after: Duration,
    /// After `close`, how long to wait for the provider's last messages and the close frame.
    pub close_wait: Duration,
}

/// Start the socket task; the caller gets the two channel halves.
pub(crate) fn spawn<D: Dialect>(ws: Ws, dialect: D, opts: Opts) -> SttStream {
    let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(wsclient::run(ws, Session::new(dialect, opts), audio_rx, events_tx));
    SttStream { audio: audio_tx, events: events_rx }
}

/// One recognizer stream on wsclient's frame loop: the STT rules around a [`Dialect`].
pub(crate) struct Session<D> {
    d: D,
    opts: Opts,
    /// How often the keep-alive clock is looked at.
    period: Duration,
    closing: bool,
    /// The next keep-alive check, or once closing the end of the close wait.
    next: Instant,
    last_sent: Instant,
    /// The provider's own usage was forwarded, so no local estimate is needed.
    usage_reported: bool,
    /// Why the stream failed, reported before the closing usage.
    failed: Option<SttError>,
    /// A write failed: what to report, unless a close frame explains it before the instant.
    write_failed: Option<(SttError, Instant)>,
}

impl<D: Dialect> Session<D> {
    fn new(d: D, opts: Opts) -> Self {
        // Looked at every second (or sooner for a short keep-alive), as Deepgram asks.
        let period = Duration::from_secs(1).min(opts.keepalive_after).max(Duration::from_millis(10));
        let now = Instant::now();
        Self {
            d,
            opts,
            period,
            closing: false,
            next: now + period,
            last_sent: now,
            usage_reported: false,
            failed: None,
            write_failed: None,
        }
    }

    fn fail(&mut self, e: SttError) -> Step {
        self.failed = Some(e);
        Step::Stop
    }

    fn after(&mut self, decoded: Result<Flow, SttError>, events: &[SttEvent]) -> Step {
        self.usage_reported |= events.iter().any(|e| matches!(e, SttEvent::Usage { .. }));
        match decoded {
            Ok(Flow::Continue) => Step::Continue,
            Ok(Flow::Finished) => Step::Stop,
            Err(e) => self.fail(e),
        }
    }

    fn closed(&mut self, frame: Option<&CloseFrame>) -> Step {
        match D::closed(frame, self.closing) {
            Ok(()) => Step::Stop,
            Err(e) => self.fail(e),
        }
    }

    /// After a failed write only a close frame (or results framed in binary) count.
    fn frame_after_write_failure(
        &mut self,
        msg: Option<Result<Message, tungstenite::Error>>,
        io: &mut Io<SttEvent>,
    ) -> Step {
        match msg {
            Some(Ok(Message::Close(frame))) => self.closed(frame.as_ref()),
            Some(Ok(Message::Binary(b))) => {
                let decoded = self.d.binary(&b, &mut io.events).map(|_| Flow::Continue);
                self.after(decoded, &io.events)
            }
            Some(Ok(_)) => Step::Continue,
            Some(Err(_)) | None => match self.write_failed.take() {
                Some((e, _)) => self.fail(e),
                None => Step::Stop,
            },
        }
    }
}

impl<D: Dialect> wsclient::Driver for Session<D> {
    type Input = SttInput;
    type Event = SttEvent;
    /// A recognizer notices a gone session at its next event; nothing is cancelled for it.
    const STOP_WHEN_UNHEARD: bool = false;

    fn start(&mut self, io: &mut Io<SttEvent>) {
        self.d.start(&mut io.out);
    }

    fn frame(&mut self, msg: Option<Result<Message, tungstenite::Error>>, io: &mut Io<SttEvent>) -> Step {
        if self.write_failed.is_some() {
            return self.frame_after_write_failure(msg, io);
        }
        match msg {
            None if self.closing => Step::Stop,
            None => self.fail(lost()),
            Some(Err(tungstenite::Error::ConnectionClosed)) if self.closing => Step::Stop,
            Some(Err(e)) => self.fail(SttError::Protocol(e.to_string())),
            Some(Ok(Message::Text(text))) => {
                let decoded = self.d.decode(&text, &mut io.events, &mut io.out);
                self.after(decoded, &io.events)
            }
            Some(Ok(Message::Binary(b))) => {
                let decoded = self.d.binary(&b, &mut io.events);
                self.after(decoded, &io.events)
            }
            Some(Ok(Message::Close(frame))) => self.closed(frame.as_ref()),
            Some(Ok(_)) => Step::Continue,
        }
    }

    fn input(&mut self, input: Option<SttInput>, io: &mut Io<SttEvent>) -> Step {
        let out = &mut io.out;
        let restarts_keepalive = match input {
            Some(SttInput::Audio(pcm)) => {
                if let Err(e) = self.d.audio(pcm, out) {
                    return self.fail(e);
                }
                true
            }
            Some(SttInput::KeepAlive) => {
                self.d.keepalive(out);
                true
            }
            Some(SttInput::Finalize) => {
                self.d.finalize(out);
                D::FINALIZE_RESTARTS_KEEPALIVE
            }
            Some(SttInput::Close) | None => {
                self.closing = true;
                self.next = Instant::now() + self.opts.close_wait;
                if self.d.close(out) == Flow::Finished {
                    return Step::Stop;
                }
                true
            }
        };
        if restarts_keepalive && !out.is_empty() {
            self.last_sent = Instant::now();
        }
        Step::Continue
    }

    fn accepts_input(&self) -> bool {
        !self.closing && self.write_failed.is_none()
    }

    fn deadline(&self) -> Option<Instant> {
        Some(self.write_failed.as_ref().map_or(self.next, |(_, at)| *at))
    }

    fn timer(&mut self, io: &mut Io<SttEvent>) -> Step {
        if let Some((e, _)) = self.write_failed.take() {
            return self.fail(e);
        }
        if self.closing {
            tracing::debug!(provider = D::NAME, "stt: no close after the end of audio; giving up waiting");
            return Step::Stop;
        }
        let now = Instant::now();
        if now.duration_since(self.last_sent) >= self.opts.keepalive_after {
            self.last_sent = now;
            self.d.keepalive(&mut io.out);
        }
        self.next = now + self.period;
        Step::Continue
    }

    fn send_failed(&mut self, error: tungstenite::Error, _io: &mut Io<SttEvent>) -> Step {
        let e = match error {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => lost(),
            other => SttError::Protocol(other.to_string()),
        };
        self.write_failed = Some((e, Instant::now() + SEND_FAIL_WAIT));
        Step::Continue
    }

    fn finish(&mut self, end: wsclient::End, io: &mut Io<SttEvent>) {
        if end == wsclient::End::Unheard {
            return;
        }
        if let Some(e) = self.failed.take() {
            tracing::warn!(provider = D::NAME, code = e.code(), error = %e, "stt stream failed");
            io.events.push(SttEvent::Error(e));
        }
        if !self.usage_reported {
            io.events.push(self.d.usage(io.sent_binary, self.opts.sample_rate));
        }
    }
}

/// Milliseconds of linear16 mono audio in `bytes`.
pub(crate) fn pcm_ms(bytes: u64, sample_rate: u32) -> u64 {
    bytes * 1000 / (u64::from(sample_rate.max(1)) * 2)
}

fn lost() -> SttError {
    SttError::Closed { code: 1006, reason: "connection lost".into() }
}

/// The error a provider's close frame means. Auth refusals after the upgrade (AssemblyAI closes
/// 1008 "Unauthorized connection: …", older 4001 "Not Authorized") map to `Unauthorized`.
pub(crate) fn close_error(f: &CloseFrame) -> SttError {
    let code = u16::from(f.code);
    if matches!(code, 1008 | 4001) && f.reason.to_ascii_lowercase().contains("unauthori") {
        return SttError::Unauthorized;
    }
    SttError::Closed { code, reason: f.reason.to_string() }
}

/// HTTP status of a refused call (session init, key check) → typed error.
pub(crate) fn status_error(status: u16) -> SttError {
    match status {
        401 | 403 => SttError::Unauthorized,
        429 => SttError::RateLimited,
        s => SttError::Connect(format!("HTTP {s}")),
    }
}

/// One HTTP client for every key check and session init: it pools connections and TLS setup.
pub(crate) fn http_client() -> Result<&'static reqwest::Client, SttError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(15))
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| SttError::Connect(format!("HTTP client: {e}")))
}

/// `GET url` with `headers`: Ok on 2xx, the typed error otherwise. Used by `check_key`.
pub(crate) async fn check_get(url: Url, headers: reqwest::header::HeaderMap) -> Result<(), SttError> {
    let resp = http_client()?.get(url).headers(headers).send().await.map_err(|e| {
        if e.is_timeout() {
            SttError::Timeout
        } else {
            SttError::Connect(e.without_url().to_string())
        }
    })?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(status_error(status.as_u16()))
    }
}

/// Zeros for silence frames, sliced without allocating (100 ms at 48 kHz linear16).
static SILENCE: [u8; 9600] = [0; 9600];

/// `ms` of linear16 silence at `sample_rate` (capped at what [`SILENCE`] holds).
pub(crate) fn silence(sample_rate: u32, ms: u32) -> Bytes {
    let n = (u64::from(sample_rate) * 2 * u64::from(ms) / 1000) as usize;
    Bytes::from_static(SILENCE.get(..n & !1).unwrap_or(&SILENCE))
}

/// Seconds (as providers report them) to whole milliseconds; garbage counts as zero.
pub(crate) fn seconds_to_ms(s: f64) -> u64 {
    if s.is_finite() && s > 0.0 {
        (s * 1000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_silence_and_close_codes() {
        let ws_url = |base: &str, path| wsclient::endpoint(&Url::parse(base).unwrap(), wsclient::Scheme::Ws, path);
        assert_eq!(ws_url("https://api.example.com", &["v3", "ws"]).unwrap().as_str(), "wss://api.example.com/v3/ws");
        assert_eq!(
            ws_url("ftp://x", &["a"]).map_err(SttError::from),
            Err(SttError::Connect("unsupported URL scheme \"ftp\"".into()))
        );
        assert_eq!(silence(16000, 100).len(), 3200);
        assert_eq!(silence(48000, 500).len(), 9600);
        let f = |code: u16, reason: &str| CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        assert_eq!(close_error(&f(1008, "Unauthorized connection: Invalid API key")), SttError::Unauthorized);
        assert_eq!(close_error(&f(3005, "x")), SttError::Closed { code: 3005, reason: "x".into() });
        assert_eq!((seconds_to_ms(2.25), seconds_to_ms(f64::NAN)), (2250, 0));
    }
}
