//! Provider name → adapter. New provider = `mod foo;` in lib.rs + one line in each function.

use crate::{Deepgram, Stt};
use std::sync::Arc;

/// The adapter for `name`, or `None` if this build does not know it.
pub fn build(name: &str) -> Option<Arc<dyn Stt>> {
    Some(match name {
        "deepgram" => Arc::new(Deepgram::new()),
        _ => return None,
    })
}

/// Every name [`build`] accepts, for config validation and dependency wiring.
pub fn names() -> &'static [&'static str] {
    &["deepgram"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_and_reports_itself() {
        for name in names() {
            let stt = build(name).unwrap();
            assert_eq!(stt.name(), *name);
        }
        assert!(build("nope").is_none());
    }
}
