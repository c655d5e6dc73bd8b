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
//! # Layout
//! - [`Pool`] (here): open sockets by URL and key, each with reserved context slots.
//! - [`socket::Shared`]: one socket as a [`wsclient::Driver`], run by [`wsclient::run`] like
//!   every other adapter's. Its input is the pool's [`Cmd`]s; it spells each context's messages,
//!   routes server messages to contexts by `contextId` ([`wsclient::Router`]), and owns every
//!   clock: keep-alives, the bounded wait for `isFinal`, the idle close.
//! - [`context::run`]: one small task per stream. It stays a task because the loop reads one
//!   input channel, while each stream brings its own text receiver and its own event receiver,
//!   whose drop (barge-in) must be noticed at once, not at the socket's next frame. It pipes the
//!   text in as [`Cmd`]s, counts billable characters, forwards its events and ends with
//!   `Usage`; it holds no clock and no wire spelling.
//!
//! # Lifecycle
//! A pooled socket holds its key while open (the socket is authenticated with it) and closes
//! itself with `close_socket` after [`Timings::socket_idle`] without contexts, before the
//! provider's 20 s inactivity timeout. A socket the provider closed is dropped from the pool;
//! its open contexts get a `Closed` error. At most [`MAX_CONTEXTS`] contexts share one socket.

mod context;
mod socket;

use crate::{TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Voice prefix that selects the multi-context endpoint.
pub(super) const VOICE_PREFIX: &str = "multi:";
/// Contexts per socket: a turn plus the one being closed after a barge-in, times a few sessions.
pub(super) const MAX_CONTEXTS: usize = 5;
/// Slots value of a socket that is closing or closed: reservations fail.
const CLOSED: usize = usize::MAX;

const TEXT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 128;

/// The pool's clocks; the defaults suit the provider's 20 s inactivity limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timings {
    /// Close a socket this long after its last context.
    pub socket_idle: Duration,
    /// Send a context empty text (C2: it resets the context's inactivity timer) after this long
    /// without input, during long LLM pauses.
    pub keep_alive: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self { socket_idle: Duration::from_secs(15), keep_alive: Duration::from_secs(10) }
    }
}

/// Open multi-context sockets, shared by every session this adapter serves.
#[derive(Default)]
pub(crate) struct Pool {
    sockets: Mutex<Vec<Arc<Socket>>>,
    timings: Timings,
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
    /// Reserved context slots, or [`CLOSED`]; shared with the socket's driver.
    slots: Arc<AtomicUsize>,
}

impl Socket {
    fn matches(&self, url: &str, key: &SecretString) -> bool {
        self.url == url && self.key.expose_secret() == key.expose_secret()
    }
}

/// A context slot reserved on a socket, released when dropped.
struct Slot(Arc<Socket>);

impl Slot {
    fn reserve(socket: &Arc<Socket>) -> Option<Self> {
        let slots = &socket.slots;
        slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_CONTEXTS).then_some(n + 1)).ok()?;
        Some(Self(socket.clone()))
    }

    fn cmds(&self) -> &mpsc::Sender<Cmd> {
        &self.0.cmds
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = self
            .0
            .slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1).filter(|_| n != CLOSED));
    }
}

/// From the pool and the contexts to a socket's driver.
enum Cmd {
    /// A new context: say its first message, and route its server messages to `events`.
    Open { id: Arc<str>, events: mpsc::Sender<TtsEvent> },
    /// A stream's input (never empty text), spelled by the driver.
    Input { id: Arc<str>, input: TtsInput },
    /// The context's task ended: stop routing to it, and close it at the provider if it was
    /// still generating (barge-in).
    Forget(Arc<str>),
}

impl Pool {
    pub(super) fn new(timings: Timings) -> Self {
        Self { sockets: Mutex::default(), timings }
    }

    pub(super) fn timings(&self) -> Timings {
        self.timings
    }

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
        let id: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
        let (ctx_tx, ctx_rx) = mpsc::channel(EVENT_QUEUE);
        // A pooled socket may close between lookup and use; then one fresh socket is tried.
        let mut fresh = false;
        let slot = loop {
            let pooled = if fresh { None } else { self.reserve(url.as_str(), req.key) };
            let slot = match pooled {
                Some(s) => s,
                None => {
                    fresh = true;
                    self.open(connect_timeout, &url, req.key).await?
                }
            };
            // A socket whose driver is backed up (a context not reading its audio) is no
            // better than a closed one: wait for it no longer than for a handshake.
            let open = Cmd::Open { id: id.clone(), events: ctx_tx.clone() };
            match tokio::time::timeout(connect_timeout, slot.cmds().send(open)).await {
                Ok(Ok(())) => break slot,
                Ok(Err(_)) if fresh => {
                    return Err(TtsError::Closed {
                        code: 1006,
                        reason: "the socket closed while opening a context".into(),
                    })
                }
                Err(_) if fresh => {
                    return Err(TtsError::Connect("the new socket did not take the context in time".into()))
                }
                _ => {}
            }
            drop(slot);
            fresh = true;
        };
        drop(ctx_tx);
        let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(context::run(slot, id, ctx_rx, text_rx, events_tx));
        Ok(TtsStream { text: text_tx, events: events_rx })
    }

    /// A live socket for `url` and `key` with a free context slot, reserved.
    fn reserve(&self, url: &str, key: &SecretString) -> Option<Slot> {
        let mut sockets = self.sockets.lock().ok()?;
        sockets.retain(|s| !s.cmds.is_closed() && s.slots.load(Ordering::Acquire) != CLOSED);
        sockets.iter().filter(|s| s.matches(url, key)).find_map(Slot::reserve)
    }

    /// Handshakes a new socket (one slot reserved), starts its driver and adds it to the pool.
    async fn open(&self, connect_timeout: Duration, url: &url::Url, key: &SecretString) -> Result<Slot, TtsError> {
        let ws = super::open(url, key, connect_timeout).await?;
        let (cmds, cmd_rx) = mpsc::channel(TEXT_QUEUE);
        let slots = Arc::new(AtomicUsize::new(1));
        let driver = socket::Shared::new(slots.clone(), self.timings);
        tokio::spawn(wsclient::run(ws, driver, cmd_rx, wsclient::Router));
        let socket = Arc::new(Socket { url: url.to_string(), key: key.clone(), cmds, slots });
        if let Ok(mut sockets) = self.sockets.lock() {
            sockets.push(socket.clone());
        }
        Ok(Slot(socket))
    }
}
