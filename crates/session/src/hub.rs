//! Live session events by call id, for watchers that connect before or during the call.

use crate::SessionEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Registry of per-call broadcast channels. A watcher may subscribe before the call starts;
/// the session publishes into the same channel. Touched at subscribe/start/end, never per frame.
#[derive(Clone, Default)]
pub struct SessionHub {
    calls: Arc<Mutex<HashMap<String, broadcast::Sender<SessionEvent>>>>,
}

impl SessionHub {
    pub fn channel(&self, call_id: &str) -> broadcast::Sender<SessionEvent> {
        let mut calls = match self.calls.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        calls.entry(call_id.to_string()).or_insert_with(|| broadcast::channel(256).0).clone()
    }

    pub fn subscribe(&self, call_id: &str) -> broadcast::Receiver<SessionEvent> {
        self.channel(call_id).subscribe()
    }

    pub fn remove(&self, call_id: &str) {
        let mut calls = match self.calls.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        calls.remove(call_id);
    }
}
