//! ElevenLabs multi-context WebSocket (protocols/tts.md C2): one socket per (endpoint, key,
//! voice, model, rate) kept across agent turns, one `context_id` per [`TtsStream`]. A new turn
//! skips the TCP/TLS/WebSocket handshake, and barge-in (dropping the stream) sends
//! `close_context` instead of closing the socket.
//!
//! # Selecting it
//! Write the voice as `multi:{voice_id}` (e.g. `multi:21m00Tcm4TlvDq8ikWAM`). The voice is the
//! one free-form request field: the model must stay a rate-table id for billing, and
//! [`crate::TtsRequest`] is shared by every adapter. ElevenLabs voice ids never contain `:`.
//!
//! # Lifecycle
//! A pooled socket holds its key while open (the socket is authenticated with it) and closes
//! itself with `close_socket` after [`SOCKET_IDLE`] without contexts, before the provider's
//! 20 s inactivity timeout. A socket the provider closed is dropped from the pool; its open
//! contexts get a `Closed` error. At most [`MAX_CONTEXTS`] contexts share one socket.

use super::wire;
use crate::{Alignment, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Voice prefix that selects the multi-context endpoint.
pub(super) const VOICE_PREFIX: &str = "multi:";
/// Contexts per socket: a turn plus the one being closed after a barge-in, times a few sessions.
pub(super) const MAX_CONTEXTS: usize = 5;
/// Close a socket this long after its last context, inside the provider's 20 s idle limit.
pub(super) const SOCKET_IDLE: Duration = Duration::from_secs(15);
/// Empty text resets a context's inactivity timer (C2) during long LLM pauses.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// After `close_context`, give up if the provider stays silent this long without `isFinal`.
const CLOSE_IDLE: Duration = Duration::from_secs(10);
/// `contexts` value of a socket that is closing or closed: reservations fail.
const CLOSED: usize = usize::MAX;

const TEXT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 128;

/// Open multi-context sockets, shared by every session this adapter serves.
#[derive(Default)]
pub(crate) struct Pool {
    sockets: Mutex<Vec<Arc<Socket>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.sockets.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "Pool({n} sockets)")
    }
}

/// One pooled socket. Not `Debug`: it holds a key.
struct Socket {
    /// The full `multi-stream-input` URL: voice, model and format are fixed per socket.
    url: String,
    key: SecretString,
    cmds: mpsc::Sender<Cmd>,
    /// Reserved context slots, or [`CLOSED`].
    contexts: Arc<AtomicUsize>,
}

impl Socket {
    fn matches(&self, url: &str, key: &SecretString) -> bool {
        self.url == url && self.key.expose_secret() == key.expose_secret()
    }

    fn reserve(&self) -> bool {
        self.contexts.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_CONTEXTS).then_some(n + 1)).is_ok()
    }

    fn release(&self) {
        let _ = self
            .contexts
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1).filter(|_| n != CLOSED));
    }
}

/// From a context to its socket's task.
enum Cmd {
    Open { id: String, events: mpsc::Sender<CtxEvent> },
    Send(String),
    Forget(String),
}

/// From the socket's task to one context.
enum CtxEvent {
    Audio { pcm: Bytes, alignment: Option<Alignment> },
    Final,
    Error(TtsError),
}

impl Pool {
    /// Opens a context on a pooled socket (or a new one) and returns its stream.
    pub(super) async fn connect(
        &self,
        connect_timeout: Duration,
        req: &TtsRequest<'_>,
        voice: &str,
    ) -> Result<TtsStream, TtsError> {
        if voice.is_empty() {
            return Err(TtsError::Connect("the voice after `multi:` is empty".into()));
        }
        let url = super::stream_url(req.base_url, voice, req.model, req.sample_rate, "multi-stream-input")?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (ctx_tx, ctx_rx) = mpsc::channel(EVENT_QUEUE);
        let init = serde_json::json!({
            "text": " ",
            "context_id": id,
            "voice_settings": wire::VoiceSettings::default(),
            "generation_config": {"chunk_length_schedule": wire::CHUNK_LENGTH_SCHEDULE},
        })
        .to_string();
        // A pooled socket may close between lookup and use; then one fresh socket is tried.
        let mut fresh = false;
        let socket = loop {
            let pooled = if fresh { None } else { self.reserve(url.as_str(), req.key) };
            let socket = match pooled {
                Some(s) => s,
                None => {
                    fresh = true;
                    self.open(connect_timeout, &url, req.key).await?
                }
            };
            let open = Cmd::Open { id: id.clone(), events: ctx_tx.clone() };
            if socket.cmds.send(open).await.is_ok() && socket.cmds.send(Cmd::Send(init.clone())).await.is_ok() {
                break socket;
            }
            socket.release();
            if fresh {
                return Err(TtsError::Closed {
                    code: 1006,
                    reason: "the socket closed while opening a context".into(),
                });
            }
            fresh = true;
        };
        drop(ctx_tx);
        let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(run_context(socket, id, ctx_rx, text_rx, events_tx));
        Ok(TtsStream { text: text_tx, events: events_rx })
    }

    /// A live socket for `url` and `key` with a free context slot, reserved.
    fn reserve(&self, url: &str, key: &SecretString) -> Option<Arc<Socket>> {
        let mut sockets = self.sockets.lock().ok()?;
        sockets.retain(|s| !s.cmds.is_closed() && s.contexts.load(Ordering::Acquire) != CLOSED);
        sockets.iter().find(|s| s.matches(url, key) && s.reserve()).cloned()
    }

    /// Handshakes a new socket (one slot reserved) and adds it to the pool.
    async fn open(
        &self,
        connect_timeout: Duration,
        url: &url::Url,
        key: &SecretString,
    ) -> Result<Arc<Socket>, TtsError> {
        let mut request =
            url.as_str().into_client_request().map_err(|e| TtsError::Connect(format!("bad request: {e}")))?;
        let mut header = HeaderValue::from_str(key.expose_secret())
            .map_err(|_| TtsError::Connect("the API key is not a valid header value".into()))?;
        header.set_sensitive(true);
        request.headers_mut().insert("xi-api-key", header);
        let (ws, _) = tokio::time::timeout(
            connect_timeout,
            tokio_tungstenite::connect_async_with_config(request, Some(super::ws_config()), true),
        )
        .await
        .map_err(|_| TtsError::Connect("timed out".into()))?
        .map_err(super::handshake_error)?;
        let (cmds, cmd_rx) = mpsc::channel(TEXT_QUEUE);
        let contexts = Arc::new(AtomicUsize::new(1));
        tokio::spawn(run_socket(ws, cmd_rx, contexts.clone()));
        let socket = Arc::new(Socket { url: url.to_string(), key: key.clone(), cmds, contexts });
        if let Ok(mut sockets) = self.sockets.lock() {
            sockets.push(socket.clone());
        }
        Ok(socket)
    }
}

/// Owns one socket: routes server messages to contexts by `contextId`, sends for them, and
/// closes the socket once idle.
async fn run_socket(mut ws: Ws, mut cmds: mpsc::Receiver<Cmd>, contexts: Arc<AtomicUsize>) {
    let mut routes: HashMap<String, mpsc::Sender<CtxEvent>> = HashMap::new();
    let mut idle_since = Instant::now();
    let failure = loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Open { id, events }) => {
                    routes.insert(id, events);
                }
                Some(Cmd::Send(json)) => {
                    if let Err(e) = ws.send(Message::text(json)).await {
                        break TtsError::Closed { code: 1006, reason: format!("send failed: {e}") };
                    }
                }
                Some(Cmd::Forget(id)) => {
                    routes.remove(&id);
                    if routes.is_empty() {
                        idle_since = Instant::now();
                    }
                }
                None => break TtsError::Closed { code: 1001, reason: "adapter dropped".into() },
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let inc = match wire::parse(&t) {
                        Ok(inc) => inc,
                        Err(e) => break e,
                    };
                    route(&mut routes, inc).await;
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) =
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                    break TtsError::Closed { code, reason };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break TtsError::Closed { code: 1006, reason: e.to_string() },
                None => break TtsError::Closed { code: 1006, reason: "connection lost".into() },
            },
            () = tokio::time::sleep_until(idle_since + SOCKET_IDLE), if routes.is_empty() => {
                // Only if no context reserved a slot meanwhile.
                if contexts.compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    let _ = ws.send(Message::text(r#"{"close_socket":true}"#)).await;
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    return;
                }
                idle_since = Instant::now();
            }
        }
    };
    contexts.store(CLOSED, Ordering::Release);
    for (_, events) in routes.drain() {
        let _ = events.send(CtxEvent::Error(failure.clone())).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

/// Hands one server message to its context; an error naming no context goes to all of them.
async fn route(routes: &mut HashMap<String, mpsc::Sender<CtxEvent>>, inc: wire::Incoming) {
    let Some(id) = inc.context_id else {
        if let Some(e) = inc.error {
            for events in routes.values() {
                let _ = events.send(CtxEvent::Error(e.clone())).await;
            }
        }
        return;
    };
    let Some(events) = routes.get(&id) else { return }; // a context already forgotten (barge-in)
    let mut done = false;
    if let Some(e) = inc.error {
        done = true;
        let _ = events.send(CtxEvent::Error(e)).await;
    }
    if let Some((pcm, alignment)) = inc.audio {
        let _ = events.send(CtxEvent::Audio { pcm, alignment }).await;
    }
    if inc.is_final {
        done = true;
        let _ = events.send(CtxEvent::Final).await;
    }
    if done {
        routes.remove(&id);
    }
}

/// One context: the session's text in, its audio out, usage (characters sent) at the end.
async fn run_context(
    socket: Arc<Socket>,
    id: String,
    mut ctx: mpsc::Receiver<CtxEvent>,
    mut text: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) {
    let mut chars = 0u64;
    let mut unflushed = false;
    let mut closing = false;
    let mut deadline = Instant::now() + KEEP_ALIVE;
    let send = |json: String| socket.cmds.send(Cmd::Send(json));
    loop {
        tokio::select! {
            biased;
            () = events.closed() => {
                // Barge-in: end this context only; the socket stays for the next turn.
                let _ = send(serde_json::json!({"context_id": id, "close_context": true}).to_string()).await;
                break;
            }
            ev = ctx.recv() => {
                let (ev, last) = match ev {
                    Some(CtxEvent::Audio { pcm, alignment }) => (TtsEvent::Audio { pcm, alignment }, false),
                    Some(CtxEvent::Final) => (TtsEvent::Done, true),
                    Some(CtxEvent::Error(e)) => (TtsEvent::Error(e), true),
                    None => (TtsEvent::Error(TtsError::Closed { code: 1006, reason: "connection lost".into() }), true),
                };
                if closing {
                    deadline = Instant::now() + CLOSE_IDLE;
                }
                if events.send(ev).await.is_err() || last {
                    break;
                }
            }
            input = text.recv(), if !closing => {
                let mut msgs = Vec::with_capacity(2);
                let mut usage = false;
                match input {
                    Some(TtsInput::Text(s)) if s.is_empty() => continue, // "" would only keep alive
                    Some(TtsInput::Text(mut s)) => {
                        chars += s.chars().count() as u64;
                        unflushed = true;
                        if !s.ends_with(char::is_whitespace) {
                            s.push(' ');
                        }
                        msgs.push(serde_json::json!({"text": s, "context_id": id}).to_string());
                    }
                    Some(TtsInput::Flush) => {
                        usage = true;
                        if std::mem::take(&mut unflushed) {
                            msgs.push(flush(&id));
                        }
                    }
                    Some(TtsInput::Close) | None => {
                        if std::mem::take(&mut unflushed) {
                            msgs.push(flush(&id));
                        }
                        msgs.push(serde_json::json!({"context_id": id, "close_context": true}).to_string());
                        closing = true;
                    }
                }
                for m in msgs {
                    if send(m).await.is_err() {
                        closing = true; // the socket task reports why on `ctx`
                    }
                }
                deadline = Instant::now() + if closing { CLOSE_IDLE } else { KEEP_ALIVE };
                if usage && events.send(TtsEvent::Usage { characters: chars }).await.is_err() {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                if closing {
                    let _ = events.send(TtsEvent::Error(TtsError::Protocol("no isFinal after close_context".into()))).await;
                    break;
                }
                let _ = send(serde_json::json!({"text": "", "context_id": id}).to_string()).await;
                deadline = Instant::now() + KEEP_ALIVE;
            }
        }
    }
    let _ = socket.cmds.send(Cmd::Forget(id)).await;
    socket.release();
    let _ = events.send(TtsEvent::Usage { characters: chars }).await;
}

fn flush(id: &str) -> String {
    serde_json::json!({"context_id": id, "text": "", "flush": true}).to_string()
}
