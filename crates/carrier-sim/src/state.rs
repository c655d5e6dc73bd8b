//! What the simulator remembers: which calls are over for it (hung up or transferred away),
//! and what it accepted, in order.

use super::SimAccounts;
use carrier::Carrier;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub(super) struct Shared {
    pub(super) accounts: SimAccounts,
    /// Fetches Plivo's `aleg_url`, as Plivo would after accepting a transfer.
    pub(super) http: reqwest::Client,
    /// Calls no longer live here: hung up or transferred.
    over: Mutex<HashSet<(Carrier, String)>>,
    hangups: Mutex<Vec<(String, String)>>,
    /// Every hang-up asked for, answered or not (a transferred call must never get one).
    hangup_attempts: Mutex<Vec<(String, String)>>,
    actions: Mutex<Vec<Value>>,
    transfers: Mutex<Vec<Value>>,
    dtmf: Mutex<Vec<Value>>,
    requests: AtomicUsize,
    /// Milliseconds every carrier request waits before it takes effect (0: none).
    reply_delay_ms: AtomicU64,
}

// A panicking handler must not turn every later request into a second panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(accounts: SimAccounts) -> Self {
        Self {
            accounts,
            http: reqwest::Client::new(),
            over: Mutex::default(),
            hangups: Mutex::default(),
            hangup_attempts: Mutex::default(),
            actions: Mutex::default(),
            transfers: Mutex::default(),
            dtmf: Mutex::default(),
            requests: AtomicUsize::new(0),
            reply_delay_ms: AtomicU64::new(0),
        }
    }

    /// Ends the call; false if it was already over.
    pub(super) fn end(&self, carrier: Carrier, call_id: &str) -> bool {
        lock(&self.hangup_attempts).push((carrier.as_str().to_string(), call_id.to_string()));
        let fresh = lock(&self.over).insert((carrier, call_id.to_string()));
        if fresh {
            lock(&self.hangups).push((carrier.as_str().to_string(), call_id.to_string()));
        }
        fresh
    }

    /// Hands the call away: it is over for this server, though no hang-up is recorded. False
    /// if it was already over.
    pub(super) fn transfer_out(&self, carrier: Carrier, call_id: &str) -> bool {
        lock(&self.over).insert((carrier, call_id.to_string()))
    }

    pub(super) fn has_ended(&self, carrier: Carrier, call_id: &str) -> bool {
        lock(&self.over).contains(&(carrier, call_id.to_string()))
    }

    pub(super) fn record_action(&self, action: Value) {
        lock(&self.actions).push(action);
    }

    pub(super) fn record_transfer(&self, transfer: Value) {
        lock(&self.transfers).push(transfer);
    }

    pub(super) fn record_dtmf(&self, dtmf: Value) {
        lock(&self.dtmf).push(dtmf);
    }

    pub(super) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn hangups(&self) -> Vec<(String, String)> {
        lock(&self.hangups).clone()
    }

    pub(super) fn hangup_attempts(&self) -> Vec<(String, String)> {
        lock(&self.hangup_attempts).clone()
    }

    pub(super) fn actions(&self) -> Vec<Value> {
        lock(&self.actions).clone()
    }

    pub(super) fn transfers(&self) -> Vec<Value> {
        lock(&self.transfers).clone()
    }

    pub(super) fn dtmf(&self) -> Vec<Value> {
        lock(&self.dtmf).clone()
    }

    pub(super) fn set_reply_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.reply_delay_ms.store(ms, Ordering::Relaxed);
    }

    pub(super) fn reply_delay(&self) -> Duration {
        Duration::from_millis(self.reply_delay_ms.load(Ordering::Relaxed))
    }

    pub(super) fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}
