//! The platform's own provider keys ("managed"), swappable at runtime.
//!
//! Rotation replaces the key for sessions opened afterwards; a running session holds its own
//! copy inside its [`crate::SessionPlan`], so it keeps the key it started with.

use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Default)]
pub struct ManagedKeys {
    inner: Arc<RwLock<HashMap<String, SecretString>>>,
}

impl std::fmt::Debug for ManagedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedKeys").field("providers", &self.providers()).finish()
    }
}

impl ManagedKeys {
    pub fn set(&self, provider: &str, key: SecretString) {
        if let Ok(mut map) = self.inner.write() {
            map.insert(provider.to_string(), key);
        }
    }

    pub fn get(&self, provider: &str) -> Option<SecretString> {
        self.inner.read().ok().and_then(|m| m.get(provider).cloned())
    }

    pub fn providers(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.read().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        v.sort();
        v
    }

    pub fn is_empty(&self) -> bool {
        self.inner.read().map(|m| m.is_empty()).unwrap_or(true)
    }
}

/// The last 4 characters of a key: the only part of a key ever shown.
pub fn last4(key: &SecretString) -> String {
    let k = key.expose_secret();
    let n = k.chars().count();
    k.chars().skip(n.saturating_sub(4)).collect()
}
