//! Live session events, keyed by session. A carrier call id names at most one live session at
//! a time; a watcher may ask for a call before it starts and is attached when it starts, but
//! only if it may see the org that call belongs to.
//!
//! Several nodes: with a relay set, every event of this node's sessions is also handed to the
//! relay (which publishes it to the other nodes), and events relayed from other nodes are
//! [`SessionHub::deliver`]ed here to whoever watches that session on this node, under the
//! same visibility rule.

use crate::SessionEvent;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Who is asking to watch: the operator sees every org, an org sees its own calls, and an
/// anonymous watcher (sandbox only) sees the server's own `default` org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    Admin,
    Org(String),
}

impl Viewer {
    pub fn may_see(&self, org_id: &str) -> bool {
        match self {
            Viewer::Admin => true,
            Viewer::Org(o) => o == org_id,
        }
    }
}

struct Live {
    org_id: String,
    events: broadcast::Sender<SessionEvent>,
    /// Runs on another node; kept here only while someone on this node watches it.
    remote: bool,
}

/// A session event as it travels between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relayed {
    /// The node that runs the session.
    pub node: String,
    pub session_id: String,
    pub call_id: Option<String>,
    pub org_id: String,
    pub event: SessionEvent,
}

/// Where this node's events go to reach the other nodes.
struct Relay {
    node: String,
    tx: mpsc::Sender<Relayed>,
}

/// A watcher waiting for a call to start: who it is, and where its receiver goes.
type Waiter = (Viewer, oneshot::Sender<broadcast::Receiver<SessionEvent>>);

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Live>,
    /// Live call id → its session.
    calls: HashMap<String, String>,
    /// Watchers waiting for a call id to start.
    waiting: HashMap<String, Vec<Waiter>>,
    /// Watchers of another node's session, waiting for its next event.
    waiting_sessions: HashMap<String, Vec<Waiter>>,
}

/// Registry of live sessions' broadcast channels. Touched at subscribe/start/end, never per frame.
#[derive(Clone, Default)]
pub struct SessionHub {
    inner: Arc<Mutex<Inner>>,
    relay: Arc<OnceLock<Relay>>,
}

/// The call id is already carried by a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallIdInUse;

impl SessionHub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Register a starting session (and its carrier call id, unless another live session has
    /// it). Watchers already waiting for the call id, and allowed to see `org_id`, are attached
    /// before any event is sent, so they miss nothing.
    pub fn register(
        &self,
        session_id: &str,
        call_id: Option<&str>,
        org_id: &str,
    ) -> Result<broadcast::Sender<SessionEvent>, CallIdInUse> {
        let mut inner = self.lock();
        let in_use = |c: &str| inner.calls.get(c).and_then(|s| inner.sessions.get(s)).is_some_and(|l| !l.remote);
        if call_id.is_some_and(in_use) {
            return Err(CallIdInUse);
        }
        let events = broadcast::channel(256).0;
        if let Some(relay) = self.relay.get() {
            let meta = Relayed {
                node: relay.node.clone(),
                session_id: session_id.to_string(),
                call_id: call_id.map(str::to_string),
                org_id: org_id.to_string(),
                // Replaced by each event as it is forwarded.
                event: SessionEvent::End { reason: String::new() },
            };
            tokio::spawn(forward(events.subscribe(), meta, relay.tx.clone()));
        }
        if let Some(c) = call_id {
            inner.calls.insert(c.to_string(), session_id.to_string());
            for (viewer, tx) in inner.waiting.remove(c).unwrap_or_default() {
                if viewer.may_see(org_id) {
                    let _ = tx.send(events.subscribe());
                }
            }
        }
        let live = Live { org_id: org_id.to_string(), events: events.clone(), remote: false };
        inner.sessions.insert(session_id.to_string(), live);
        Ok(events)
    }

    /// Hand every event of this node's sessions to `tx` from now on (set once, at startup).
    pub fn relay_to(&self, node_id: &str, tx: mpsc::Sender<Relayed>) {
        let _ = self.relay.set(Relay { node: node_id.to_string(), tx });
    }

    /// An event relayed from the node running the session: sent to this node's watchers of
    /// it, attaching those waiting for its call id or session id that may see its org.
    /// Nobody watching: dropped. The entry goes at the session's end or when its last watcher
    /// leaves.
    pub fn deliver(&self, r: Relayed) {
        let mut inner = self.lock();
        match inner.sessions.get(&r.session_id).map(|l| l.remote) {
            Some(false) => return,
            Some(true) => {}
            None => {
                let by_call = r.call_id.as_ref().and_then(|c| inner.waiting.remove(c)).unwrap_or_default();
                let by_id = inner.waiting_sessions.remove(&r.session_id).unwrap_or_default();
                let allowed: Vec<_> =
                    by_call.into_iter().chain(by_id).filter(|(v, t)| v.may_see(&r.org_id) && !t.is_closed()).collect();
                if allowed.is_empty() {
                    return;
                }
                let events = broadcast::channel(256).0;
                for (_, tx) in allowed {
                    let _ = tx.send(events.subscribe());
                }
                if let Some(c) = &r.call_id {
                    inner.calls.insert(c.clone(), r.session_id.clone());
                }
                inner.sessions.insert(r.session_id.clone(), Live { org_id: r.org_id.clone(), events, remote: true });
            }
        }
        let end = matches!(r.event, SessionEvent::End { .. });
        let Some(live) = inner.sessions.get(&r.session_id) else { return };
        let _ = live.events.send(r.event);
        if end || live.events.receiver_count() == 0 {
            inner.sessions.remove(&r.session_id);
            if let Some(c) = &r.call_id {
                if inner.calls.get(c).is_some_and(|s| *s == r.session_id) {
                    inner.calls.remove(c);
                }
            }
        }
    }

    /// The events of a session this node does not run (the caller checked in the store that
    /// `viewer` may see it): now if someone here already watches it, else from its next event.
    pub fn watch_remote_session(
        &self,
        session_id: &str,
        viewer: Viewer,
    ) -> oneshot::Receiver<broadcast::Receiver<SessionEvent>> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        match inner.sessions.get(session_id) {
            Some(l) if viewer.may_see(&l.org_id) => {
                let _ = tx.send(l.events.subscribe());
            }
            Some(_) => {}
            None => inner.waiting_sessions.entry(session_id.to_string()).or_default().push((viewer, tx)),
        }
        rx
    }

    /// A live session's events, if `viewer` may see it.
    pub fn subscribe_session(&self, session_id: &str, viewer: &Viewer) -> Option<broadcast::Receiver<SessionEvent>> {
        let inner = self.lock();
        inner.sessions.get(session_id).filter(|l| viewer.may_see(&l.org_id)).map(|l| l.events.subscribe())
    }

    /// The events of the call `call_id`: now if it is live (and visible to `viewer`), or once
    /// it starts. The receiver is dropped unanswered when the call belongs to someone else.
    pub fn watch_call(&self, call_id: &str, viewer: Viewer) -> oneshot::Receiver<broadcast::Receiver<SessionEvent>> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        let live = inner.calls.get(call_id).and_then(|s| inner.sessions.get(s));
        match live {
            Some(l) if viewer.may_see(&l.org_id) => {
                let _ = tx.send(l.events.subscribe());
            }
            Some(_) => {}
            None => {
                let waiting = inner.waiting.entry(call_id.to_string()).or_default();
                waiting.retain(|(_, t)| !t.is_closed());
                waiting.push((viewer, tx));
            }
        }
        rx
    }

    /// Forget an ended session and free its call id.
    pub fn remove(&self, session_id: &str, call_id: Option<&str>) {
        let mut inner = self.lock();
        inner.sessions.remove(session_id);
        if let Some(c) = call_id {
            if inner.calls.get(c).is_some_and(|s| s == session_id) {
                inner.calls.remove(c);
            }
        }
    }

    /// Drop watchers that gave up waiting (their receiver is gone).
    pub fn prune_waiting(&self) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        for waiting in [&mut inner.waiting, &mut inner.waiting_sessions] {
            waiting.retain(|_, w| {
                w.retain(|(_, t)| !t.is_closed());
                !w.is_empty()
            });
        }
    }
}

/// Copy one local session's events to the relay, in order, until its end.
async fn forward(mut rx: broadcast::Receiver<SessionEvent>, meta: Relayed, tx: mpsc::Sender<Relayed>) {
    loop {
        let event = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "event relay too slow; events skipped for other nodes");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let end = matches!(event, SessionEvent::End { .. });
        if tx.send(Relayed { event, ..meta.clone() }).await.is_err() || end {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_call_id_cannot_be_taken_twice() {
        let hub = SessionHub::default();
        let _a = hub.register("s1", Some("CA1"), "org_a").unwrap();
        assert_eq!(hub.register("s2", Some("CA1"), "org_b").err(), Some(CallIdInUse));
        hub.remove("s2", Some("CA1"));
        assert!(hub.register("s3", Some("CA1"), "org_a").is_err(), "s2 never owned CA1");
        hub.remove("s1", Some("CA1"));
        assert!(hub.register("s3", Some("CA1"), "org_a").is_ok());
    }

    #[test]
    fn waiting_watchers_attach_only_to_their_own_org() {
        let hub = SessionHub::default();
        let mut mine = hub.watch_call("CA1", Viewer::Org("org_a".into()));
        let mut theirs = hub.watch_call("CA1", Viewer::Org("org_b".into()));
        let mut admin = hub.watch_call("CA1", Viewer::Admin);
        let tx = hub.register("s1", Some("CA1"), "org_a").unwrap();
        let mut rx = mine.try_recv().expect("attached at start");
        assert!(theirs.try_recv().is_err(), "another org's watcher is not attached");
        assert!(admin.try_recv().is_ok());
        tx.send(SessionEvent::End { reason: "hangup".into() }).unwrap();
        assert!(matches!(rx.try_recv(), Ok(SessionEvent::End { .. })));
        assert!(hub.subscribe_session("s1", &Viewer::Org("org_b".into())).is_none());
        assert!(hub.subscribe_session("s1", &Viewer::Org("org_a".into())).is_some());
    }

    fn relayed(session: &str, call: &str, event: SessionEvent) -> Relayed {
        let (session_id, call_id) = (session.to_string(), Some(call.to_string()));
        Relayed { node: "other".into(), session_id, call_id, org_id: "org_a".into(), event }
    }

    #[test]
    fn another_nodes_events_reach_only_allowed_watchers_here() {
        let hub = SessionHub::default();
        let started = || SessionEvent::Started { session_id: "s9".into(), call_sid: Some("CA9".into()) };
        hub.deliver(relayed("s9", "CA9", started()));
        let mut by_call = hub.watch_call("CA9", Viewer::Org("org_a".into()));
        let mut theirs = hub.watch_call("CA9", Viewer::Org("org_b".into()));
        let mut by_id = hub.watch_remote_session("s9", Viewer::Admin);
        assert!(by_call.try_recv().is_err(), "nobody watched: the first event was dropped");
        hub.deliver(relayed("s9", "CA9", SessionEvent::Dtmf { digit: "5".into() }));
        let (mut a, mut b) = (by_call.try_recv().expect("attached"), by_id.try_recv().expect("attached"));
        assert!(theirs.try_recv().is_err(), "another org's watcher is not attached");
        assert!(matches!(a.try_recv(), Ok(SessionEvent::Dtmf { .. })));
        assert!(hub.register("s10", Some("CA9"), "org_a").is_ok(), "a remote call id does not block a local one");
        hub.deliver(relayed("s9", "CA9", SessionEvent::End { reason: "node_lost".into() }));
        assert!(matches!(b.try_recv(), Ok(SessionEvent::Dtmf { .. })));
        assert!(matches!(b.try_recv(), Ok(SessionEvent::End { .. })));
        assert!(hub.subscribe_session("s9", &Viewer::Admin).is_none(), "forgotten at its end");
    }
}
