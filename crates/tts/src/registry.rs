//! Provider name → adapter. New provider = `mod foo;` in lib.rs + one line in each function.

use crate::{ElevenLabs, Tts};
use std::sync::Arc;

/// The adapter for `name`, or `None` if this build does not know it.
pub fn build(name: &str) -> Option<Arc<dyn Tts>> {
    Some(match name {
        "elevenlabs" => Arc::new(ElevenLabs::new()),
        _ => return None,
    })
}

/// Every name [`build`] accepts, for config validation and dependency wiring.
pub fn names() -> &'static [&'static str] {
    &["elevenlabs"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_and_reports_itself() {
        for name in names() {
            let tts = build(name).unwrap();
            assert_eq!(tts.name(), *name);
        }
        assert!(build("nope").is_none());
    }
}
