//! The socket task shared by the JSON-over-WebSocket adapters (ElevenLabs, Cartesia, Gladia):
//! audio and control out, results in, exactly one usage event at the end. Each provider only
//! describes its framing through [`Wire`].

use crate::{SttError, SttEvent, SttInput};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Audio queue depth: 64 × 20 ms ≈ 1.3 s of slack before the caller feels backpressure.
pub(crate) const AUDIO_QUEUE: usize = 64;
/// Event queue depth: a few results per second of speech.
pub(crate) const EVENT_QUEUE: usize = 64;

/// What a decoded provider message means for the stream as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The provider has said its last word (`done`, `end_session`, last commit after close).
    Done,
}

/// One provider's framing. Methods are called from the socket task only.
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

pub(crate) struct Opts {
    pub sample_rate: u32,
    /// Send the wire's keep-alive after this long without audio.
    pub keepalive_after: Duration,
    /// After the close message, how long to wait for the provider's last messages.
    pub close_wait: Duration,
}

/// How the socket loop ended.
enum End {
    Normal,
    Failed(SttError),
    /// The event receiver is gone: nobody to tell anything.
    ConsumerGone,
}

/// Spawn the socket task and hand back the caller's halves.
pub(crate) fn spawn<W: Wire>(ws: Ws, wire: W, opts: Opts) -> crate::SttStream {
    let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(run(ws, wire, audio_rx, events_tx, opts));
    crate::SttStream { audio: audio_tx, events: events_rx }
}

async fn run<W: Wire>(
    mut ws: Ws,
    mut wire: W,
    mut input: mpsc::Receiver<SttInput>,
    events: mpsc::Sender<SttEvent>,
    opts: Opts,
) {
    let mut audio_bytes = 0u64;
    let end = drive(&mut ws, &mut wire, &mut input, &events, &opts, &mut audio_bytes).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    if let End::ConsumerGone = end {
        return;
    }
    if let End::Failed(e) = end {
        tracing::warn!(provider = W::NAME, code = e.code(), error = %e, "stt stream failed");
        if events.send(SttEvent::Error(e)).await.is_err() {
            return;
        }
    }
    let usage = match wire.provider_audio_ms() {
        Some(audio_ms) => SttEvent::Usage { audio_ms, estimated: false },
        None => SttEvent::Usage { audio_ms: pcm_ms(audio_bytes, opts.sample_rate), estimated: true },
    };
    let _ = events.send(usage).await;
}

/// Milliseconds of linear16 mono audio in `bytes`.
pub(crate) fn pcm_ms(bytes: u64, sample_rate: u32) -> u64 {
    bytes * 1000 / (u64::from(sample_rate.max(1)) * 2)
}

async fn drive<W: Wire>(
    ws: &mut Ws,
    wire: &mut W,
    input: &mut mpsc::Receiver<SttInput>,
    events: &mpsc::Sender<SttEvent>,
    opts: &Opts,
    audio_bytes: &mut u64,
) -> End {
    let mut keepalive = tokio::time::interval(Duration::from_secs(1).min(opts.keepalive_after));
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_sent = Instant::now();
    let close_deadline = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(close_deadline);
    let mut closing = false;
    let mut out = Vec::with_capacity(4);
    loop {
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                None if closing => return End::Normal,
                None => return End::Failed(lost()),
                Some(Err(tungstenite::Error::ConnectionClosed)) if closing => return End::Normal,
                Some(Err(e)) => return End::Failed(SttError::Protocol(e.to_string())),
                Some(Ok(Message::Text(text))) => {
                    let flow = wire.decode(&text, &mut out);
                    for ev in out.drain(..) {
                        if events.send(ev).await.is_err() {
                            return End::ConsumerGone;
                        }
                    }
                    match flow {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Done) => return End::Normal,
                        Err(e) => return End::Failed(e),
                    }
                }
                Some(Ok(Message::Close(frame))) => return closed(frame, closing),
                Some(Ok(_)) => {}
            },
            inp = input.recv(), if !closing => {
                let msg = match inp {
                    Some(SttInput::Audio(pcm)) => {
                        *audio_bytes += pcm.len() as u64;
                        last_sent = Instant::now();
                        Some(wire.audio(pcm))
                    }
                    Some(SttInput::KeepAlive) => {
                        last_sent = Instant::now();
                        wire.keepalive()
                    }
                    Some(SttInput::Finalize) => wire.finalize(),
                    Some(SttInput::Close) | None => {
                        closing = true;
                        close_deadline.as_mut().reset(Instant::now() + opts.close_wait);
                        match wire.close() {
                            Some(msg) => Some(msg),
                            None => return End::Normal,
                        }
                    }
                };
                if let Some(msg) = msg {
                    if let Err(e) = ws.send(msg).await {
                        return after_send_error(ws, e, closing).await;
                    }
                }
            },
            _ = keepalive.tick(), if !closing => {
                if last_sent.elapsed() >= opts.keepalive_after {
                    last_sent = Instant::now();
                    if let Some(msg) = wire.keepalive() {
                        if let Err(e) = ws.send(msg).await {
                            return after_send_error(ws, e, closing).await;
                        }
                    }
                }
            },
            () = &mut close_deadline, if closing => {
                tracing::debug!(provider = W::NAME, "stt: provider did not finish after close; giving up waiting");
                return End::Normal;
            },
        }
    }
}

fn lost() -> SttError {
    SttError::Closed { code: 1006, reason: "connection lost".into() }
}

fn closed(frame: Option<tungstenite::protocol::CloseFrame>, closing: bool) -> End {
    match frame {
        None if closing => End::Normal,
        None => End::Failed(lost()),
        Some(f) if f.code == CloseCode::Normal && closing => End::Normal,
        Some(f) if f.code == CloseCode::Normal => {
            End::Failed(SttError::Closed { code: 1000, reason: "closed before the stream ended".into() })
        }
        Some(f) => End::Failed(SttError::Closed { code: f.code.into(), reason: f.reason.to_string() }),
    }
}

/// A write failed, usually because the provider closed first: prefer its close frame's reason.
async fn after_send_error(ws: &mut Ws, e: tungstenite::Error, closing: bool) -> End {
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Ok(Message::Close(frame)) => return closed(frame, closing),
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

/// Small socket buffers and Nagle off, as for Deepgram: per-call memory and latency matter.
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
