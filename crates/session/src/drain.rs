//! Graceful drain: on shutdown the server stops admitting calls, lets live ones finish, then
//! asks the rest to say a closing line and hang up, waits until every session has settled, and
//! then until usage the store had not yet taken has been written (or a bound has passed).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How many of something are still running, and a wake-up when the last one ends.
#[derive(Default)]
struct Running {
    n: AtomicUsize,
    idle: Notify,
}

impl Running {
    fn get(&self) -> usize {
        self.n.load(Ordering::Acquire)
    }

    fn join(&self) {
        self.n.fetch_add(1, Ordering::AcqRel);
    }

    fn leave(&self) {
        if self.n.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Wait until none runs, or `timeout`; true when none does.
    async fn wait_none(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.idle.notified();
            if self.get() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.get() == 0;
            }
        }
    }
}

/// The server-wide drain state every session sees.
#[derive(Default)]
pub struct Drain {
    live: Running,
    /// Sessions' ledger tasks still writing usage (they outlive their session while the store
    /// is not taking it).
    writing: Running,
    /// Cancelled when the drain begins: the server is stopping.
    stopping: CancellationToken,
    ending: CancellationToken,
}

/// One admitted session, counted live until dropped (whichever way the session ends).
pub struct LiveCall(Arc<Drain>);

impl Drop for LiveCall {
    fn drop(&mut self) {
        self.0.live.leave();
    }
}

/// One session's ledger task, counted until it has written everything or given up.
pub struct Writing(Arc<Drain>);

impl Writing {
    /// Fires when the server begins to stop: a ledger task retrying in long pauses should try
    /// again now, while the server still waits for it.
    pub fn stopping(&self) -> CancellationToken {
        self.0.stopping.clone()
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.writing.leave();
    }
}

impl Drain {
    /// Count a session live until the guard drops.
    pub fn enter(self: &Arc<Self>) -> LiveCall {
        self.live.join();
        LiveCall(self.clone())
    }

    /// Count a session's ledger task until the guard drops.
    pub fn writing(self: &Arc<Self>) -> Writing {
        self.writing.join();
        Writing(self.clone())
    }

    pub fn live(&self) -> usize {
        self.live.get()
    }

    /// Ledger tasks with usage still to write.
    pub fn unwritten(&self) -> usize {
        self.writing.get()
    }

    /// Stop admitting calls (`/healthz` answers 503 from now on).
    pub fn begin(&self) {
        self.stopping.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Ask every live session to say its closing line and hang up.
    pub fn end_calls(&self) {
        self.ending.cancel();
    }

    /// Fires when the sessions are asked to end.
    pub fn ending(&self) -> CancellationToken {
        self.ending.clone()
    }

    /// Wait until no session is live, or `timeout`; true when none is.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        self.live.wait_none(timeout).await
    }

    /// Wait until every ledger task has written its usage (or given up), or `timeout`; true
    /// when all have.
    pub async fn wait_written(&self, timeout: Duration) -> bool {
        self.writing.wait_none(timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_once_every_guard_dropped() {
        let d = Arc::new(Drain::default());
        let a = d.enter();
        let b = d.enter();
        assert!(!d.wait_idle(Duration::from_millis(10)).await);
        drop(a);
        let waiter = tokio::spawn({
            let d = d.clone();
            async move { d.wait_idle(Duration::from_secs(5)).await }
        });
        drop(b);
        assert!(waiter.await.unwrap());
        assert_eq!(d.live(), 0);
    }

    #[tokio::test]
    async fn written_once_every_ledger_guard_dropped_and_told_when_stopping() {
        let d = Arc::new(Drain::default());
        let w = d.writing();
        let stopping = w.stopping();
        assert!(!stopping.is_cancelled());
        d.begin();
        assert!(stopping.is_cancelled());
        assert!(d.wait_idle(Duration::from_millis(10)).await, "no live call");
        assert!(!d.wait_written(Duration::from_millis(10)).await);
        drop(w);
        assert!(d.wait_written(Duration::from_millis(10)).await);
    }
}
