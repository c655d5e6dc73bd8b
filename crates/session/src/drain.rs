//! Graceful drain: on shutdown the server stops admitting calls, lets live ones finish, then
//! asks the rest to say a closing line and hang up, and exits once every session has settled.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The server-wide drain state every session sees.
#[derive(Default)]
pub struct Drain {
    draining: AtomicBool,
    live: AtomicUsize,
    idle: Notify,
    ending: CancellationToken,
}

/// One admitted session, counted live until dropped (whichever way the session ends).
pub struct LiveCall(Arc<Drain>);

impl Drop for LiveCall {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drain {
    /// Count a session live until the guard drops.
    pub fn enter(self: &Arc<Self>) -> LiveCall {
        self.live.fetch_add(1, Ordering::AcqRel);
        LiveCall(self.clone())
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Stop admitting calls (`/healthz` answers 503 from now on).
    pub fn begin(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
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
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.idle.notified();
            if self.live() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.live() == 0;
            }
        }
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
}
