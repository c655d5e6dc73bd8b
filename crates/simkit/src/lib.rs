//! Pieces shared by the provider simulators of the stt, tts and llm crates.
//!
//! The keys a simulator accepts, shared so a running test can add one.

use std::sync::{Arc, RwLock};

/// Accepted API keys. Clones share one set; `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub struct SimKeys(Arc<RwLock<Vec<String>>>);

impl SimKeys {
    /// Accept `key` from now on (e.g. a key created mid-test through the API).
    pub fn add(&self, key: impl Into<String>) {
        if let Ok(mut keys) = self.0.write() {
            keys.push(key.into());
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.read().map(|keys| keys.iter().any(|k| k == key)).unwrap_or(false)
    }
}

impl From<Vec<String>> for SimKeys {
    fn from(keys: Vec<String>) -> Self {
        Self(Arc::new(RwLock::new(keys)))
    }
}

impl From<&[&str]> for SimKeys {
    fn from(keys: &[&str]) -> Self {
        keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().into()
    }
}

impl std::fmt::Debug for SimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|k| k.len()).unwrap_or(0);
        write!(f, "SimKeys({n} keys)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_and_debug_hides() {
        let keys = SimKeys::from(vec!["sk-one".to_string()]);
        let shared = keys.clone();
        shared.add("sk-two");
        assert!(keys.contains("sk-one") && keys.contains("sk-two") && !keys.contains("sk-three"));
        assert_eq!(format!("{keys:?}"), "SimKeys(2 keys)");
    }
}
