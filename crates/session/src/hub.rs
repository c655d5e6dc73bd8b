//! Live session events, keyed by session. A carrier call id names at most one live session at
//! a time; a watcher may ask for a call before it starts and is attached when it starts, but
//! only if it may see the org that call belongs to.

use crate::SessionEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, oneshot};

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
}

/// Registry of live sessions' broadcast channels. Touched at subscribe/start/end, never per frame.
#[derive(Clone, Default)]
pub struct SessionHub {
    inner: Arc<Mutex<Inner>>,
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
        if call_id.is_some_and(|c| inner.calls.contains_key(c)) {
            return Err(CallIdInUse);
        }
        let events = broadcast::channel(256).0;
        if let Some(c) = call_id {
            inner.calls.insert(c.to_string(), session_id.to_string());
            for (viewer, tx) in inner.waiting.remove(c).unwrap_or_default() {
                if viewer.may_see(org_id) {
                    let _ = tx.send(events.subscribe());
                }
            }
        }
        inner.sessions.insert(session_id.to_string(), Live { org_id: org_id.to_string(), events: events.clone() });
        Ok(events)
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
        let mut inner = self.lock();
        inner.waiting.retain(|_, w| {
            w.retain(|(_, t)| !t.is_closed());
            !w.is_empty()
        });
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
}
