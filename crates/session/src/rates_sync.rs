//! Keeping every node's rate table current. On a shared store (Postgres) each node listens
//! for the `rates` notification sent in the transaction that changed the table and reloads
//! at once, so nothing is read per session. A store nobody else writes to (SQLite, one
//! process) has no notifications: there the version is compared before each session (a local
//! read) so the operator's CLI edits still apply without a restart.

use billing::store::Store;
use billing::PlanResolver;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::RwLock;

/// How long a session start waits for a reload already under way.
const WAIT_FOR_RELOAD: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct RatesSync {
    /// The store's rate-table version the resolver holds.
    version: AtomicI64,
    /// Changes arrive by notification: no version check per session.
    notified: AtomicBool,
    /// Held for writing while a notified reload runs, so a session starting meanwhile waits
    /// for the new table instead of using the old one.
    reloading: RwLock<()>,
}

impl RatesSync {
    pub fn new(version: i64) -> Self {
        Self { version: AtomicI64::new(version), ..Self::default() }
    }

    /// From now on the table is reloaded on notification only.
    pub fn follow_notifications(&self) {
        self.notified.store(true, Ordering::Release);
    }

    /// Before a session (or an API answer) uses the table: with notifications, wait for a
    /// reload under way; without, reload when the store's version moved.
    pub async fn before_use(&self, store: &dyn Store, resolver: &PlanResolver) {
        if self.notified.load(Ordering::Acquire) {
            if tokio::time::timeout(WAIT_FOR_RELOAD, self.reloading.read()).await.is_err() {
                tracing::warn!("rate table reload still running; using the cached table");
            }
            return;
        }
        let v = match store.rates_version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the rate table version; keeping the cached table");
                return;
            }
        };
        if v != self.version.load(Ordering::Acquire) {
            self.reload(store, resolver, "version moved").await;
        }
    }

    /// A notification said the table changed (or some may have been missed): reload now.
    pub async fn notified(&self, store: &dyn Store, resolver: &PlanResolver) {
        let _writing = self.reloading.write().await;
        self.reload(store, resolver, "notified").await;
    }

    /// Read the table (and its version) and hand it to the resolver.
    pub async fn reload(&self, store: &dyn Store, resolver: &PlanResolver, why: &str) {
        let version = match store.rates_version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the rate table version; keeping the cached table");
                return;
            }
        };
        match store.rates().await {
            Ok(t) if !t.is_empty() => {
                resolver.set_rates(t);
                self.version.store(version, Ordering::Release);
                tracing::info!(version, why, "rate table reloaded");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot reload the rate table; keeping the cached one"),
        }
    }
}
