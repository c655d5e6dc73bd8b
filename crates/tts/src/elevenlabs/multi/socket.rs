//! One pooled socket as a [`wsclient::Driver`]: the multi-context spelling (protocols/tts.md
//! C2: `context_id` on every message, `flush`, `close_context`, `close_socket`) and the routing
//! of server messages to contexts by `contextId`.

use super::{Cmd, Timings, CLOSED};
use crate::elevenlabs::wire;
use crate::socket::pump::close_error;
use crate::{TtsError, TtsEvent, TtsInput};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wsclient::tungstenite::{self, Message};
use wsclient::{End, Flow, Io, Routed};

/// After `close_context`, give up if the provider stays silent this long without `isFinal`.
const CLOSE_IDLE: Duration = Duration::from_secs(10);
/// The goodbye: the provider finishes what it generates, then closes.
const CLOSE_SOCKET: &str = r#"{"close_socket":true}"#;

type Out = Io<Routed<TtsEvent>>;

/// A socket's contexts and clocks. Events go to each context's own channel ([`Routed`]); one
/// whose queue is full holds up the socket's reads until it drains, as a single reader must.
pub(super) struct Shared {
    contexts: HashMap<Arc<str>, Context>,
    /// The pool's reservations on this socket; [`CLOSED`] once it ends.
    slots: Arc<AtomicUsize>,
    timings: Timings,
    /// Since when the socket has had no context; it closes [`Timings::socket_idle`] later.
    idle_since: Instant,
    /// Why the socket failed, for the contexts still open; `None` when it closes in good order.
    failure: Option<TtsError>,
}

struct Context {
    events: mpsc::Sender<TtsEvent>,
    /// Text sent since the last flush.
    unflushed: bool,
    /// `close_context` sent: waiting for `isFinal`, for at most [`CLOSE_IDLE`] of silence.
    closing: bool,
    last_sent: Instant,
    last_heard: Instant,
    /// When the timer looks at this context next. It moves lazily (on input and on the timer),
    /// so a stream of audio does not re-arm the timer per message.
    check_at: Instant,
}

impl Shared {
    pub(super) fn new(slots: Arc<AtomicUsize>, timings: Timings) -> Self {
        Self { contexts: HashMap::new(), slots, timings, idle_since: Instant::now(), failure: None }
    }

    fn fail(&mut self, e: TtsError) -> Flow {
        self.failure = Some(e);
        Flow::Stop
    }

    fn forget(&mut self, id: &str) -> Option<Context> {
        let ctx = self.contexts.remove(id);
        if ctx.is_some() && self.contexts.is_empty() {
            self.idle_since = Instant::now();
        }
        ctx
    }

    /// Hands one server message to its context; an error naming no context ends all of them.
    fn route(&mut self, inc: wire::Incoming, io: &mut Out) {
        let Some(id) = inc.context_id else {
            if let Some(e) = inc.error {
                for (_, ctx) in self.contexts.drain() {
                    io.events.push(Routed { to: ctx.events, event: TtsEvent::Error(e.clone()) });
                }
                self.idle_since = Instant::now();
            }
            return;
        };
        let Some(ctx) = self.contexts.get_mut(id.as_str()) else { return }; // forgotten (barge-in)
        if ctx.closing {
            ctx.last_heard = Instant::now();
        }
        let done = inc.error.is_some() || inc.is_final;
        let events = [
            inc.error.map(TtsEvent::Error),
            inc.audio.map(|(pcm, alignment)| TtsEvent::Audio { pcm, alignment }),
            inc.is_final.then_some(TtsEvent::Done),
        ];
        let to = &ctx.events;
        io.events.extend(events.into_iter().flatten().map(|event| Routed { to: to.clone(), event }));
        if done {
            self.forget(&id);
        }
    }
}

impl Context {
    fn new(events: mpsc::Sender<TtsEvent>, now: Instant, keep_alive: Duration) -> Self {
        Self { events, unflushed: false, closing: false, last_sent: now, last_heard: now, check_at: now + keep_alive }
    }

    /// Spells one input of the stream; `Close` flushes what is unflushed, then closes the context.
    fn say(&mut self, id: &str, input: TtsInput, out: &mut Vec<Message>, now: Instant, keep_alive: Duration) {
        match input {
            TtsInput::Text(mut s) => {
                // Billed characters are the caller's; the space only keeps words apart.
                if !s.ends_with(char::is_whitespace) {
                    s.push(' ');
                }
                out.push(Message::text(serde_json::json!({"text": s, "context_id": id}).to_string()));
                self.unflushed = true;
            }
            TtsInput::Flush => {
                if std::mem::take(&mut self.unflushed) {
                    out.push(flush(id));
                }
            }
            TtsInput::Close => {
                if std::mem::take(&mut self.unflushed) {
                    out.push(flush(id));
                }
                out.push(close_context(id));
                self.closing = true;
                self.last_heard = now;
            }
        }
        self.last_sent = now;
        self.check_at = now + if self.closing { CLOSE_IDLE } else { keep_alive };
    }

    /// The timer looked at this context: a keep-alive when due; `false` when it waited too long
    /// for `isFinal`.
    fn tick(&mut self, id: &str, out: &mut Vec<Message>, now: Instant, keep_alive: Duration) -> bool {
        if self.closing {
            if now >= self.last_heard + CLOSE_IDLE {
                return false;
            }
            self.check_at = self.last_heard + CLOSE_IDLE;
        } else {
            if now >= self.last_sent + keep_alive {
                out.push(Message::text(serde_json::json!({"text": "", "context_id": id}).to_string()));
                self.last_sent = now;
            }
            self.check_at = self.last_sent + keep_alive;
        }
        true
    }
}

impl wsclient::Driver for Shared {
    type Input = Cmd;
    type Event = Routed<TtsEvent>;
    /// Many streams: each context's task watches its own session.
    const STOP_WHEN_UNHEARD: bool = false;

    fn frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>, io: &mut Out) -> Flow {
        match frame {
            Some(Ok(Message::Text(t))) => match wire::parse(&t) {
                Ok(inc) => {
                    self.route(inc, io);
                    Flow::Continue
                }
                Err(e) => self.fail(e),
            },
            Some(Ok(Message::Close(frame))) => self.fail(close_error(frame.as_ref())),
            Some(Ok(_)) => Flow::Continue,
            Some(Err(e)) => self.fail(TtsError::Closed { code: 1006, reason: e.to_string() }),
            None => self.fail(TtsError::Closed { code: 1006, reason: "connection lost".into() }),
        }
    }

    fn input(&mut self, cmd: Option<Cmd>, io: &mut Out) -> Flow {
        let now = Instant::now();
        match cmd {
            Some(Cmd::Open { id, events }) => {
                io.out.push(Message::text(open(&id)));
                self.contexts.insert(id, Context::new(events, now, self.timings.keep_alive));
            }
            // A context the provider already ended takes no more input.
            Some(Cmd::Input { id, input }) => {
                if let Some(ctx) = self.contexts.get_mut(&*id) {
                    ctx.say(&id, input, &mut io.out, now, self.timings.keep_alive);
                }
            }
            Some(Cmd::Forget(id)) => {
                if self.forget(&id).is_some_and(|ctx| !ctx.closing) {
                    io.out.push(close_context(&id));
                }
            }
            // The pool and every stream are gone.
            None => return Flow::Stop,
        }
        Flow::Continue
    }

    fn accepts_input(&self) -> bool {
        true
    }

    fn deadline(&self) -> Option<Instant> {
        let idle_close = self.idle_since + self.timings.socket_idle;
        Some(self.contexts.values().map(|c| c.check_at).min().unwrap_or(idle_close))
    }

    fn timer(&mut self, io: &mut Out) -> Flow {
        let now = Instant::now();
        if self.contexts.is_empty() {
            // Only if no session reserved a slot meanwhile (its `Open` is on the way).
            if self.slots.compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Flow::Stop;
            }
            self.idle_since = now;
            return Flow::Continue;
        }
        let keep_alive = self.timings.keep_alive;
        self.contexts.retain(|id, ctx| {
            let alive = ctx.tick(id, &mut io.out, now, keep_alive);
            if !alive {
                let stall = TtsError::Protocol("no isFinal after close_context".into());
                io.events.push(Routed { to: ctx.events.clone(), event: TtsEvent::Error(stall) });
            }
            alive
        });
        if self.contexts.is_empty() {
            self.idle_since = now;
        }
        Flow::Continue
    }

    fn send_failed(&mut self, error: tungstenite::Error, _io: &mut Out) -> Flow {
        self.fail(TtsError::Closed { code: 1006, reason: format!("send failed: {error}") })
    }

    /// Leaves the pool; a socket in good order says `close_socket`, a failed one tells each
    /// open context why.
    fn finish(&mut self, _end: End, io: &mut Out) {
        self.slots.store(CLOSED, Ordering::Release);
        let error = match self.failure.take() {
            Some(e) => e,
            None => {
                io.out.push(Message::text(CLOSE_SOCKET));
                // Only idle sockets and a dropped pool stop in good order, so no context is open.
                TtsError::Closed { code: 1001, reason: "the socket closed".into() }
            }
        };
        for (_, ctx) in self.contexts.drain() {
            io.events.push(Routed { to: ctx.events, event: TtsEvent::Error(error.clone()) });
        }
    }
}

/// A context's first message: it opens the context with the stream's settings.
fn open(id: &str) -> String {
    serde_json::json!({
        "text": " ",
        "context_id": id,
        "voice_settings": wire::VoiceSettings::default(),
        "generation_config": {"chunk_length_schedule": wire::CHUNK_LENGTH_SCHEDULE},
    })
    .to_string()
}

fn flush(id: &str) -> Message {
    Message::text(serde_json::json!({"context_id": id, "text": "", "flush": true}).to_string())
}

fn close_context(id: &str) -> Message {
    Message::text(serde_json::json!({"context_id": id, "close_context": true}).to_string())
}
