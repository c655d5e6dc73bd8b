//! The socket task shared by the WebSocket adapters after Deepgram v1 (Flux, AssemblyAI,
//! Soniox): audio and control out, provider messages in, exactly one usage event at the end.
//! A [`Dialect`] supplies the provider's framing; this module owns the invariants of
//! [`crate::SttEvent`] (Error before the closing Usage, estimated usage when the provider's
//! figure never came).

use crate::{SttError, SttEvent, SttInput, SttStream};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
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
const AUDIO_QUEUE: usize = 64;
/// Event queue depth: a few results per second of speech.
const EVENT_QUEUE: usize = 64;

/// What a provider message meant for the stream.
#[derive(Debug, PartialEq)]
pub(crate) enum Flow {
    Continue,
    /// The provider said the stream is over (its summary came); stop reading.
    Finished,
}

/// One provider's framing. Messages to send are pushed onto `out`, events onto `events`.
pub(crate) trait Dialect: Send + 'static {
    /// For log lines.
    const NAME: &'static str;
    /// An audio frame from the caller; may be buffered (e.g. AssemblyAI's 50 ms minimum).
    fn audio(&mut self, pcm: Bytes, out: &mut Vec<Message>) {
        out.push(Message::Binary(pcm));
    }
    /// Flush buffered audio into a final result now.
    fn finalize(&mut self, out: &mut Vec<Message>);
    /// Keep an idle stream open; binary frames sent here count as audio.
    fn keepalive(&mut self, out: &mut Vec<Message>);
    /// Finish: the provider sends what remains and its summary, then closes.
    fn close(&mut self, out: &mut Vec<Message>);
    /// One text frame from the provider.
    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>) -> Result<Flow, SttError>;
}

pub(crate) struct Opts {
    pub sample_rate: u32,
    /// Keep-alive after this long without sending anything.
    pub keepalive_after: Duration,
    /// After `close`, how long to wait for the summary and the close frame.
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
        let audio_ms = p.audio_bytes * 1000 / (u64::from(opts.sample_rate.max(1)) * 2);
        let _ = events.send(SttEvent::Usage { audio_ms, estimated: true }).await;
    }
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
                    Some(Ok(Message::Close(frame))) => return closed(frame, closing),
                    Some(Ok(_)) => {}
                },
                inp = input.recv(), if !closing => {
                    match inp {
                        Some(SttInput::Audio(pcm)) => self.d.audio(pcm, &mut self.out),
                        Some(SttInput::KeepAlive) => self.d.keepalive(&mut self.out),
                        Some(SttInput::Finalize) => self.d.finalize(&mut self.out),
                        Some(SttInput::Close) | None => {
                            closing = true;
                            close_deadline.as_mut().reset(Instant::now() + opts.close_wait);
                            self.d.close(&mut self.out);
                        }
                    }
                    if !self.out.is_empty() {
                        last_sent = Instant::now();
                    }
                    if let Err(e) = self.flush(ws).await {
                        return after_send_error(ws, e, closing).await;
                    }
                },
                _ = keepalive.tick(), if !closing => {
                    if last_sent.elapsed() >= opts.keepalive_after {
                        last_sent = Instant::now();
                        self.d.keepalive(&mut self.out);
                        if let Err(e) = self.flush(ws).await {
                            return after_send_error(ws, e, closing).await;
                        }
                    }
                },
                () = &mut close_deadline, if closing => {
                    tracing::debug!(provider = D::NAME, "no close after the end of audio; giving up waiting");
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

/// A close frame: normal when 1000, or when we asked to close and the provider agreed.
fn closed(frame: Option<CloseFrame>, closing: bool) -> End {
    match frame {
        None => End::Normal,
        Some(f) if f.code == CloseCode::Normal => End::Normal,
        Some(f) if closing && f.code == CloseCode::Away => End::Normal,
        Some(f) => End::Failed(close_error(&f)),
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

/// `base` with a ws/wss scheme and `path` appended (the base URL may carry no path of its own).
pub(crate) fn ws_url(base: &Url, path: &[&str]) -> Result<Url, SttError> {
    let mut url = base.clone();
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => return Err(SttError::Connect(format!("unsupported URL scheme {other:?}"))),
    };
    url.set_scheme(scheme).map_err(|()| SttError::Connect("cannot use this base URL".into()))?;
    url.path_segments_mut()
        .map_err(|()| SttError::Connect("base URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(path);
    url.set_query(None);
    Ok(url)
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
            .map_err(handshake_error)?;
    Ok(ws)
}

fn handshake_error(e: tungstenite::Error) -> SttError {
    match e {
        tungstenite::Error::Http(resp) => match resp.status().as_u16() {
            401 | 403 => SttError::Unauthorized,
            429 => SttError::RateLimited,
            s => SttError::Connect(format!("HTTP {s} at upgrade")),
        },
        other => SttError::Connect(other.to_string()),
    }
}

/// Small socket buffers (tungstenite's 128 KiB default read buffer is zero-filled per read and
/// held per connection); Nagle off, every frame is latency-sensitive.
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
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
