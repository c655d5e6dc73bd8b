//! The socket task shared by the WebSocket adapters (Flux, AssemblyAI, Soniox, ElevenLabs,
//! Cartesia, Gladia): audio and control out, provider messages in, exactly one usage event at the
//! end. A [`Dialect`] supplies the provider's framing (and may batch audio, which AssemblyAI's
//! 50 ms minimum needs); the JSON adapters describe theirs through the simpler [`Wire`] and run as
//! [`Strict`]. This module owns the invariants of [`crate::SttEvent`] (Error before the closing
//! Usage, estimated usage when the provider's figure never came), plus the URL, HTTP and
//! handshake helpers those adapters share.

use crate::{SttError, SttEvent, SttInput, SttStream};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{
    self, client::IntoClientRequest, http::HeaderValue, protocol::frame::coding::CloseCode,
};
use tokio_tungstenite::tungstenite::{protocol::CloseFrame, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Audio queue depth: 64 × 20 ms ≈ 1.3 s of slack before the caller feels backpressure.
pub(crate) const AUDIO_QUEUE: usize = 64;
/// Event queue depth: a few results per second of speech.
pub(crate) const EVENT_QUEUE: usize = 64;

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
    /// An audio frame from the caller; may be buffered (e.g. AssemblyAI's 50 ms minimum).
    fn audio(&mut self, pcm: Bytes, out: &mut Vec<Message>) {
        out.push(Message::Binary(pcm));
    }
    /// Flush buffered audio into a final result now.
    fn finalize(&mut self, out: &mut Vec<Message>);
    /// Keep an idle stream open; binary frames sent here count as audio.
    fn keepalive(&mut self, out: &mut Vec<Message>);
    /// Finish: the provider sends what remains and its summary, then closes. Pushing nothing
    /// means close the socket at once.
    fn close(&mut self, out: &mut Vec<Message>);
    /// One text frame from the provider.
    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>) -> Result<Flow, SttError>;
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

    fn audio(&mut self, pcm: Bytes, out: &mut Vec<Message>) {
        self.pcm_bytes += pcm.len() as u64;
        out.push(self.wire.audio(pcm));
    }

    fn finalize(&mut self, out: &mut Vec<Message>) {
        out.extend(self.wire.finalize());
    }

    fn keepalive(&mut self, out: &mut Vec<Message>) {
        out.extend(self.wire.keepalive());
    }

    fn close(&mut self, out: &mut Vec<Message>) {
        out.extend(self.wire.close());
    }

    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>) -> Result<Flow, SttError> {
        self.wire.decode(text, events)
    }

    fn closed(frame: Option<&CloseFrame>, closing: bool) -> Result<(), SttError> {
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

    fn usage(&self, _sent_bytes: u64, sample_rate: u32) -> SttEvent {
        match self.wire.provider_audio_ms() {
            Some(audio_ms) => SttEvent::Usage { audio_ms, estimated: false },
            None => SttEvent::Usage { audio_ms: pcm_ms(self.pcm_bytes, sample_rate), estimated: true },
        }
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
    tokio::spawn(run(ws, dialect, audio_rx, events_tx, opts));
    SttStream { audio: audio_tx, events: events_rx }
}

/// How the socket loop ended.
enum End {
    Normal,
    Failed(SttError),
    /// The event receiver is gone: nobody to tell anything.
    ConsumerGone,
}

struct Pump<D> {
    d: D,
    audio_bytes: u64,
    usage_reported: bool,
    out: Vec<Message>,
    events: Vec<SttEvent>,
}

async fn run<D: Dialect>(
    mut ws: Ws,
    dialect: D,
    mut input: mpsc::Receiver<SttInput>,
    events: mpsc::Sender<SttEvent>,
    opts: Opts,
) {
    let mut p = Pump { d: dialect, audio_bytes: 0, usage_reported: false, out: Vec::new(), events: Vec::new() };
    let end = p.drive(&mut ws, &mut input, &events, &opts).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    if let End::ConsumerGone = end {
        return;
    }
    if let End::Failed(e) = end {
        tracing::warn!(provider = D::NAME, code = e.code(), error = %e, "stt stream failed");
        if events.send(SttEvent::Error(e)).await.is_err() {
            return;
        }
    }
    if !p.usage_reported {
        let _ = events.send(p.d.usage(p.audio_bytes, opts.sample_rate)).await;
    }
}

/// Milliseconds of linear16 mono audio in `bytes`.
pub(crate) fn pcm_ms(bytes: u64, sample_rate: u32) -> u64 {
    bytes * 1000 / (u64::from(sample_rate.max(1)) * 2)
}

impl<D: Dialect> Pump<D> {
    async fn drive(
        &mut self,
        ws: &mut Ws,
        input: &mut mpsc::Receiver<SttInput>,
        events: &mpsc::Sender<SttEvent>,
        opts: &Opts,
    ) -> End {
        let mut keepalive = tokio::time::interval(Duration::from_secs(1).min(opts.keepalive_after));
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_sent = Instant::now();
        let close_deadline = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(close_deadline);
        let mut closing = false;
        loop {
            tokio::select! {
                biased;
                msg = ws.next() => match msg {
                    None if closing => return End::Normal,
                    None => return End::Failed(lost()),
                    Some(Err(tungstenite::Error::ConnectionClosed)) if closing => return End::Normal,
                    Some(Err(e)) => return End::Failed(SttError::Protocol(e.to_string())),
                    Some(Ok(Message::Text(text))) => {
                        let flow = self.d.decode(&text, &mut self.events);
                        for ev in self.events.drain(..) {
                            self.usage_reported |= matches!(ev, SttEvent::Usage { .. });
                            if events.send(ev).await.is_err() {
                                return End::ConsumerGone;
                            }
                        }
                        match flow {
                            Ok(Flow::Continue) => {}
                            Ok(Flow::Finished) => return End::Normal,
                            Err(e) => return End::Failed(e),
                        }
                    }
                    Some(Ok(Message::Close(frame))) => return closed::<D>(frame.as_ref(), closing),
                    Some(Ok(_)) => {}
                },
                inp = input.recv(), if !closing => {
                    let restarts_keepalive = match inp {
                        Some(SttInput::Audio(pcm)) => {
                            self.d.audio(pcm, &mut self.out);
                            true
                        }
                        Some(SttInput::KeepAlive) => {
                            self.d.keepalive(&mut self.out);
                            true
                        }
                        Some(SttInput::Finalize) => {
                            self.d.finalize(&mut self.out);
                            D::FINALIZE_RESTARTS_KEEPALIVE
                        }
                        Some(SttInput::Close) | None => {
                            closing = true;
                            close_deadline.as_mut().reset(Instant::now() + opts.close_wait);
                            self.d.close(&mut self.out);
                            if self.out.is_empty() {
                                return End::Normal;
                            }
                            true
                        }
                    };
                    if restarts_keepalive && !self.out.is_empty() {
                        last_sent = Instant::now();
                    }
                    if let Err(e) = self.flush(ws).await {
                        return after_send_error::<D>(ws, e, closing).await;
                    }
                },
                _ = keepalive.tick(), if !closing => {
                    if last_sent.elapsed() >= opts.keepalive_after {
                        last_sent = Instant::now();
                        self.d.keepalive(&mut self.out);
                        if let Err(e) = self.flush(ws).await {
                            return after_send_error::<D>(ws, e, closing).await;
                        }
                    }
                },
                () = &mut close_deadline, if closing => {
                    tracing::debug!(provider = D::NAME, "stt: no close after the end of audio; giving up waiting");
                    return End::Normal;
                },
            }
        }
    }

    async fn flush(&mut self, ws: &mut Ws) -> Result<(), tungstenite::Error> {
        for msg in self.out.drain(..) {
            if let Message::Binary(b) = &msg {
                self.audio_bytes += b.len() as u64;
            }
            ws.send(msg).await?;
        }
        Ok(())
    }
}

fn lost() -> SttError {
    SttError::Closed { code: 1006, reason: "connection lost".into() }
}

fn closed<D: Dialect>(frame: Option<&CloseFrame>, closing: bool) -> End {
    match D::closed(frame, closing) {
        Ok(()) => End::Normal,
        Err(e) => End::Failed(e),
    }
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

/// A write failed, usually because the provider closed first: prefer its close frame's reason.
async fn after_send_error<D: Dialect>(ws: &mut Ws, e: tungstenite::Error, closing: bool) -> End {
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Ok(Message::Close(frame)) => return closed::<D>(frame.as_ref(), closing),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    End::Failed(match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => lost(),
        other => SttError::Protocol(other.to_string()),
    })
}

/// HTTP status at a WebSocket upgrade (or an HTTP call) → typed error.
pub(crate) fn status_error(status: u16) -> SttError {
    match status {
        401 | 403 => SttError::Unauthorized,
        429 => SttError::RateLimited,
        s => SttError::Connect(format!("HTTP {s}")),
    }
}

pub(crate) fn handshake_error(e: tungstenite::Error) -> SttError {
    match e {
        tungstenite::Error::Http(resp) => status_error(resp.status().as_u16()),
        other => SttError::Connect(other.to_string()),
    }
}

/// Small socket buffers (tungstenite's 128 KiB default read buffer is zero-filled per read and
/// held per connection); Nagle off, every frame is latency-sensitive.
pub(crate) fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

/// `base` with its scheme mapped to the WebSocket (`ws`) or HTTP (`http`) family, keeping TLS.
pub(crate) fn with_scheme(base: &Url, family: &str) -> Result<Url, SttError> {
    let tls = match base.scheme() {
        "ws" | "http" => false,
        "wss" | "https" => true,
        other => return Err(SttError::Connect(format!("unsupported URL scheme {other:?}"))),
    };
    let scheme = match (family, tls) {
        ("ws", false) => "ws",
        ("ws", true) => "wss",
        (_, false) => "http",
        (_, true) => "https",
    };
    let mut url = base.clone();
    url.set_scheme(scheme).map_err(|()| SttError::Connect("cannot use this base URL".into()))?;
    url.set_query(None);
    Ok(url)
}

/// `url` with `segments` appended to its path.
pub(crate) fn join_path(mut url: Url, segments: &[&str]) -> Result<Url, SttError> {
    url.path_segments_mut()
        .map_err(|()| SttError::Connect("base URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
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

/// A header value holding a key, marked sensitive so it never shows in debug output.
pub(crate) fn secret_header(key: &secrecy::SecretString) -> Result<reqwest::header::HeaderValue, SttError> {
    use secrecy::ExposeSecret;
    let mut value = reqwest::header::HeaderValue::from_str(key.expose_secret())
        .map_err(|_| SttError::Connect("the API key is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
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

/// `base` with a ws/wss scheme and `path` appended (the base URL may carry no path of its own).
pub(crate) fn ws_url(base: &Url, path: &[&str]) -> Result<Url, SttError> {
    join_path(with_scheme(base, "ws")?, path)
}

/// Open the socket with one sensitive auth header. Upgrade refusals map to typed errors.
pub(crate) async fn open(url: &Url, auth: Option<(&'static str, String)>, timeout: Duration) -> Result<Ws, SttError> {
    let mut request = url.as_str().into_client_request().map_err(|e| SttError::Connect(format!("bad request: {e}")))?;
    if let Some((name, value)) = auth {
        let mut value = HeaderValue::try_from(value)
            .map_err(|_| SttError::Connect("the API key is not a valid header value".into()))?;
        value.set_sensitive(true);
        request.headers_mut().insert(name, value);
    }
    let (ws, _) =
        tokio::time::timeout(timeout, tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true))
            .await
            .map_err(|_| SttError::Timeout)?
            .map_err(|e| match e {
                // This path's messages name the upgrade; the adapters that connect themselves don't.
                tungstenite::Error::Http(resp) => match status_error(resp.status().as_u16()) {
                    SttError::Connect(m) => SttError::Connect(format!("{m} at upgrade")),
                    other => other,
                },
                other => handshake_error(other),
            })?;
    Ok(ws)
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
        let url = ws_url(&Url::parse("https://api.example.com").unwrap(), &["v3", "ws"]).unwrap();
        assert_eq!(url.as_str(), "wss://api.example.com/v3/ws");
        assert!(ws_url(&Url::parse("ftp://x").unwrap(), &["a"]).is_err());
        assert_eq!(silence(16000, 100).len(), 3200);
        assert_eq!(silence(48000, 500).len(), 9600);
        let f = |code: u16, reason: &str| CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        assert_eq!(close_error(&f(1008, "Unauthorized connection: Invalid API key")), SttError::Unauthorized);
        assert_eq!(close_error(&f(3005, "x")), SttError::Closed { code: 3005, reason: "x".into() });
        assert_eq!((seconds_to_ms(2.25), seconds_to_ms(f64::NAN)), (2250, 0));
    }
}
