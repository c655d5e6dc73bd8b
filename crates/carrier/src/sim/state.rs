//! What the simulator remembers: which calls ended, and what it accepted, in order.

use super::SimAccounts;
use crate::Carrier;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub(super) struct Shared {
    pub(super) accounts: SimAccounts,
    ended: Mutex<HashSet<(Carrier, String)>>,
    hangups: Mutex<Vec<(String, String)>>,
    actions: Mutex<Vec<Value>>,
}

// A panicking handler must not turn every later request into a second panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(accounts: SimAccounts) -> Self {
        Self { accounts, ended: Mutex::default(), hangups: Mutex::default(), actions: Mutex::default() }
    }

    /// Ends the call; false if it had already ended.
    pub(super) fn end(&self, carrier: Carrier, call_id: &str) -> bool {
        let fresh = lock(&self.ended).insert((carrier, call_id.to_string()));
        if fresh {
            lock(&self.hangups).push((carrier.as_str().to_string(), call_id.to_string()));
        }
        fresh
    }

    pub(super) fn has_ended(&self, carrier: Carrier, call_id: &str) -> bool {
        lock(&self.ended).contains(&(carrier, call_id.to_string()))
    }

    pub(super) fn record_action(&self, action: Value) {
        lock(&self.actions).push(action);
    }

    pub(super) fn hangups(&self) -> Vec<(String, String)> {
        lock(&self.hangups).clone()
    }

    pub(super) fn actions(&self) -> Vec<Value> {
        lock(&self.actions).clone()
    }
}
