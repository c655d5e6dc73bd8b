//! The frame loop every provider socket runs: one task owns the socket, reads the provider,
//! the session's input and one timer, and leaves what to say to a [`Driver`].
//!
//! A service (STT, TTS) writes one `Driver` over its provider dialects; its adapters then supply
//! only their framing. The loop owns the awaits (socket writes, event sends), so drivers are
//! plain state machines: each step fills [`Io`] and says whether to go on. A socket serving many
//! streams (a provider's multi-context socket) addresses each event ([`Routed`], [`Router`]).

use futures::{SinkExt, StreamExt};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::Ws;

/// Bound on the last messages, our close frame and the provider's answer to it.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Whether the loop goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// How the loop ended, as [`Driver::finish`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A step returned [`Flow::Stop`]; the driver knows why.
    Stopped,
    /// The session dropped its event receiver (barge-in, hang-up): nobody hears events now.
    Unheard,
}

/// What one step produced: wire messages to send, then events for the session. Reused by every
/// step, so the vectors keep their capacity.
pub struct Io<E> {
    pub out: Vec<Message>,
    pub events: Vec<E>,
    /// Payload bytes of the binary messages written so far (the audio a provider received).
    pub sent_binary: u64,
}

/// One socket's owner. Steps fill `io`; the loop then writes `io.out` and, only if that
/// succeeded, sends `io.events`. A failed write discards the step's events and flow and asks
/// [`Driver::send_failed`] instead.
///
/// # Invariants
/// - Every frame result the socket yields is handed to [`Driver::frame`]; the driver must stop
///   on `None` (the socket ended), or the loop would spin.
/// - [`Driver::deadline`] bounds every wait the driver cares about; the loop calls
///   [`Driver::timer`] once it passes and re-arms only when the deadline changes, so a driver
///   that wants another tick must move its deadline.
pub trait Driver: Send {
    type Input: Send;
    type Event: Send;
    /// Stop as soon as the session drops its event receiver, rather than at the next event.
    const STOP_WHEN_UNHEARD: bool;
    /// Messages to send before anything else (a config, a first turn).
    fn start(&mut self, _io: &mut Io<Self::Event>) {}
    /// A frame from the provider, an error reading it, or `None` when the socket ended.
    fn frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>, io: &mut Io<Self::Event>) -> Flow;
    /// An input from the session; `None` when the session dropped its sender.
    fn input(&mut self, input: Option<Self::Input>, io: &mut Io<Self::Event>) -> Flow;
    /// Whether to take session input now (not while draining or after a failed write).
    fn accepts_input(&self) -> bool;
    /// When [`Driver::timer`] should run next, if ever.
    fn deadline(&self) -> Option<Instant>;
    fn timer(&mut self, io: &mut Io<Self::Event>) -> Flow;
    /// Writing `io.out` failed, usually because the provider closed first.
    fn send_failed(&mut self, error: tungstenite::Error, io: &mut Io<Self::Event>) -> Flow;
    /// The loop is over: goodbye messages into `io.out`, last events (an error, the usage)
    /// into `io.events`.
    fn finish(&mut self, end: End, io: &mut Io<Self::Event>);
}

/// Where [`run`] delivers a driver's events: one stream's `mpsc::Sender`, or [`Router`] for a
/// socket that serves many streams.
pub trait Events<E>: Send + Sync {
    /// Delivers one event; `false` when nobody hears events any more, which ends the loop
    /// ([`End::Unheard`]).
    fn send(&self, event: E) -> impl Future<Output = bool> + Send;
    /// Resolves once nobody hears events (watched when [`Driver::STOP_WHEN_UNHEARD`]).
    fn closed(&self) -> impl Future<Output = ()> + Send;
}

impl<E: Send> Events<E> for mpsc::Sender<E> {
    async fn send(&self, event: E) -> bool {
        mpsc::Sender::send(self, event).await.is_ok()
    }

    async fn closed(&self) {
        mpsc::Sender::closed(self).await;
    }
}

/// An event for one of the streams a shared socket serves, with that stream's sender.
pub struct Routed<E> {
    pub to: mpsc::Sender<E>,
    pub event: E,
}

/// Delivers each [`Routed`] event to its own stream, waiting while that stream's queue is full.
/// A stream that is gone misses its event and the loop goes on, since the socket serves the
/// others; its driver learns of it through its input. The loop is never [`End::Unheard`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Router;

impl<E: Send> Events<Routed<E>> for Router {
    async fn send(&self, routed: Routed<E>) -> bool {
        let _ = routed.to.send(routed.event).await;
        true
    }

    async fn closed(&self) {
        std::future::pending::<()>().await;
    }
}

/// Runs `driver` over `ws` until it stops or the session goes, then sends its goodbye and our
/// close frame (bounded by [`CLOSE_GRACE`]) and its last events. Spawn it once per socket.
pub async fn run<D: Driver>(
    mut ws: Ws,
    mut driver: D,
    mut input: mpsc::Receiver<D::Input>,
    events: impl Events<D::Event>,
) {
    let mut io = Io { out: Vec::new(), events: Vec::new(), sent_binary: 0 };
    let end = drive(&mut ws, &mut driver, &mut input, &events, &mut io).await;
    io.out.clear();
    io.events.clear();
    driver.finish(end, &mut io);
    let out = std::mem::take(&mut io.out);
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        for m in out {
            ws.feed(m).await?;
        }
        ws.flush().await?;
        ws.close(None).await
    })
    .await;
    for ev in io.events.drain(..) {
        if !events.send(ev).await {
            break;
        }
    }
}

async fn drive<D: Driver>(
    ws: &mut Ws,
    d: &mut D,
    input: &mut mpsc::Receiver<D::Input>,
    events: &impl Events<D::Event>,
    io: &mut Io<D::Event>,
) -> End {
    d.start(io);
    if let Some(end) = settle(ws, d, events, io, Flow::Continue).await {
        return end;
    }
    // One timer for the whole stream, reset only when the deadline moves.
    let timer = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    loop {
        let want = d.deadline();
        if want != armed {
            if let Some(at) = want {
                timer.as_mut().reset(at);
            }
            armed = want;
        }
        let accepting = d.accepts_input();
        let flow = tokio::select! {
            biased;
            () = events.closed(), if D::STOP_WHEN_UNHEARD => return End::Unheard,
            msg = ws.next() => d.frame(msg, io),
            inp = input.recv(), if accepting => d.input(inp, io),
            () = &mut timer, if armed.is_some() => {
                armed = None;
                d.timer(io)
            }
        };
        if let Some(end) = settle(ws, d, events, io, flow).await {
            return end;
        }
    }
}

/// Writes a step's messages, then delivers its events; `Some` ends the loop.
async fn settle<D: Driver>(
    ws: &mut Ws,
    d: &mut D,
    events: &impl Events<D::Event>,
    io: &mut Io<D::Event>,
    mut flow: Flow,
) -> Option<End> {
    if !io.out.is_empty() {
        if let Err(e) = write(ws, io).await {
            io.out.clear();
            io.events.clear();
            flow = d.send_failed(e, io);
            // Nothing more can be written; what the driver says next comes by its events.
            io.out.clear();
        }
    }
    for ev in io.events.drain(..) {
        if !events.send(ev).await {
            return Some(End::Unheard);
        }
    }
    (flow == Flow::Stop).then_some(End::Stopped)
}

/// Feeds every message, then flushes once; counts the binary payload that went out.
async fn write<E>(ws: &mut Ws, io: &mut Io<E>) -> Result<(), tungstenite::Error> {
    for m in io.out.drain(..) {
        let n = match &m {
            Message::Binary(b) => b.len() as u64,
            _ => 0,
        };
        ws.feed(m).await?;
        io.sent_binary += n;
    }
    ws.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{open, HeaderMap};

    /// Says hello at start, turns every text frame into an event, sends each input as text,
    /// stops on input `None` or its deadline, and reports how it ended.
    struct Echo {
        deadline: Option<Instant>,
        ended: mpsc::UnboundedSender<End>,
    }

    impl Driver for Echo {
        type Input = String;
        type Event = String;
        const STOP_WHEN_UNHEARD: bool = true;

        fn start(&mut self, io: &mut Io<String>) {
            io.out.push(Message::text("hello"));
        }

        fn frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>, io: &mut Io<String>) -> Flow {
            match frame {
                Some(Ok(Message::Text(t))) => {
                    io.events.push(t.to_string());
                    Flow::Continue
                }
                Some(Ok(_)) => Flow::Continue,
                _ => Flow::Stop,
            }
        }

        fn input(&mut self, input: Option<String>, io: &mut Io<String>) -> Flow {
            match input {
                Some(s) => {
                    io.out.push(Message::text(s));
                    io.out.push(Message::binary(vec![0u8; 3]));
                    Flow::Continue
                }
                None => Flow::Stop,
            }
        }

        fn accepts_input(&self) -> bool {
            true
        }

        fn deadline(&self) -> Option<Instant> {
            self.deadline
        }

        fn timer(&mut self, _io: &mut Io<String>) -> Flow {
            Flow::Stop
        }

        fn send_failed(&mut self, _error: tungstenite::Error, _io: &mut Io<String>) -> Flow {
            Flow::Stop
        }

        fn finish(&mut self, end: End, io: &mut Io<String>) {
            io.events.push(format!("sent {} binary bytes", io.sent_binary));
            let _ = self.ended.send(end);
        }
    }

    /// One socket for many streams: each input registers a stream and says its text; every
    /// echo goes to every registered stream; the end says `bye` to each.
    struct Fanout {
        streams: Vec<mpsc::Sender<String>>,
    }

    impl Driver for Fanout {
        type Input = (mpsc::Sender<String>, String);
        type Event = Routed<String>;
        // The router is never unheard, so this must not end the loop.
        const STOP_WHEN_UNHEARD: bool = true;

        fn frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>, io: &mut Io<Routed<String>>) -> Flow {
            let Some(Ok(Message::Text(t))) = frame else { return Flow::Stop };
            for to in &self.streams {
                io.events.push(Routed { to: to.clone(), event: t.to_string() });
            }
            Flow::Continue
        }

        fn input(&mut self, input: Option<(mpsc::Sender<String>, String)>, io: &mut Io<Routed<String>>) -> Flow {
            let Some((to, said)) = input else { return Flow::Stop };
            self.streams.push(to);
            io.out.push(Message::text(said));
            Flow::Continue
        }

        fn accepts_input(&self) -> bool {
            true
        }

        fn deadline(&self) -> Option<Instant> {
            None
        }

        fn timer(&mut self, _io: &mut Io<Routed<String>>) -> Flow {
            Flow::Continue
        }

        fn send_failed(&mut self, _error: tungstenite::Error, _io: &mut Io<Routed<String>>) -> Flow {
            Flow::Stop
        }

        fn finish(&mut self, _end: End, io: &mut Io<Routed<String>>) {
            for to in self.streams.drain(..) {
                io.events.push(Routed { to, event: "bye".into() });
            }
        }
    }

    /// A server that echoes text frames back until the client closes; returns what it read.
    async fn echo_server() -> (url::Url, tokio::task::JoinHandle<Vec<Message>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("ws://{}/", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let mut seen = Vec::new();
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = &m {
                    let _ = ws.send(Message::text(format!("echo {t}"))).await;
                }
                let close = m.is_close();
                seen.push(m);
                if close {
                    break;
                }
            }
            seen
        });
        (url, server)
    }

    #[tokio::test]
    async fn start_steps_and_finish_in_order() {
        let (url, server) = echo_server().await;
        let ws = open(&url, HeaderMap::new(), Duration::from_secs(5)).await.unwrap();
        let (ended_tx, mut ended) = mpsc::unbounded_channel();
        let (input_tx, input_rx) = mpsc::channel(4);
        let (events_tx, mut events) = mpsc::channel(4);
        tokio::spawn(run(ws, Echo { deadline: None, ended: ended_tx }, input_rx, events_tx));
        assert_eq!(events.recv().await.as_deref(), Some("echo hello"));
        input_tx.send("one".into()).await.unwrap();
        assert_eq!(events.recv().await.as_deref(), Some("echo one"));
        drop(input_tx);
        assert_eq!(events.recv().await.as_deref(), Some("sent 3 binary bytes"));
        assert_eq!(events.recv().await, None);
        assert_eq!(ended.recv().await, Some(End::Stopped));
        let seen = server.await.unwrap();
        assert_eq!(seen.first(), Some(&Message::text("hello")));
        assert!(seen.last().is_some_and(Message::is_close), "our close frame went out: {seen:?}");
    }

    #[tokio::test]
    async fn deadlines_and_a_gone_session_end_the_loop() {
        let (url, _server) = echo_server().await;
        let ws = open(&url, HeaderMap::new(), Duration::from_secs(5)).await.unwrap();
        let (ended_tx, mut ended) = mpsc::unbounded_channel();
        let (_input_tx, input_rx) = mpsc::channel(4);
        let (events_tx, events) = mpsc::channel(4);
        let deadline = Some(Instant::now() + Duration::from_secs(3600));
        tokio::spawn(run(ws, Echo { deadline, ended: ended_tx.clone() }, input_rx, events_tx));
        drop(events);
        assert_eq!(ended.recv().await, Some(End::Unheard));

        let (url, _server) = echo_server().await;
        let ws = open(&url, HeaderMap::new(), Duration::from_secs(5)).await.unwrap();
        let (_input_tx, input_rx) = mpsc::channel(4);
        let (events_tx, _events) = mpsc::channel(4);
        let deadline = Some(Instant::now() + Duration::from_millis(50));
        tokio::spawn(run(ws, Echo { deadline, ended: ended_tx }, input_rx, events_tx));
        let end = tokio::time::timeout(Duration::from_secs(5), ended.recv()).await.unwrap();
        assert_eq!(end, Some(End::Stopped));
    }

    async fn next(rx: &mut mpsc::Receiver<String>) -> Option<String> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap()
    }

    #[tokio::test]
    async fn routed_events_reach_their_own_streams_and_a_gone_one_is_skipped() {
        let (url, server) = echo_server().await;
        let ws = open(&url, HeaderMap::new(), Duration::from_secs(5)).await.unwrap();
        let (input_tx, input_rx) = mpsc::channel(4);
        let socket = tokio::spawn(run(ws, Fanout { streams: Vec::new() }, input_rx, Router));
        let (a_tx, mut a) = mpsc::channel(4);
        input_tx.send((a_tx, "one".into())).await.unwrap();
        assert_eq!(next(&mut a).await.as_deref(), Some("echo one"));

        let (b_tx, b) = mpsc::channel(4);
        drop(b);
        input_tx.send((b_tx, "two".into())).await.unwrap();
        assert_eq!(next(&mut a).await.as_deref(), Some("echo two"));

        let (c_tx, mut c) = mpsc::channel(4);
        input_tx.send((c_tx, "three".into())).await.unwrap();
        assert_eq!(next(&mut a).await.as_deref(), Some("echo three"), "a gone stream does not end the socket");
        assert_eq!(next(&mut c).await.as_deref(), Some("echo three"));

        drop(input_tx);
        for rx in [&mut a, &mut c] {
            assert_eq!(next(rx).await.as_deref(), Some("bye"));
            assert_eq!(next(rx).await, None, "the loop let go of every sender");
        }
        tokio::time::timeout(Duration::from_secs(5), socket).await.unwrap().unwrap();
        assert!(server.await.unwrap().last().is_some_and(Message::is_close));
    }
}
