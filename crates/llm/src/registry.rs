//! Provider adapters by name. A new provider = `mod foo;` in lib.rs + one line in each function.

use crate::{Llm, OpenAi};
use std::sync::Arc;

/// The adapter called `name`, sharing `http`'s connection pool; `None` for an unknown name.
pub fn build(name: &str, http: &reqwest::Client) -> Option<Arc<dyn Llm>> {
    Some(match name {
        "openai" => Arc::new(OpenAi::new(http.clone())),
        _ => return None,
    })
}

/// Every name [`build`] accepts.
pub fn names() -> &'static [&'static str] {
    &["openai"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_and_reports_itself() {
        let http = reqwest::Client::new();
        for name in names() {
            let llm = build(name, &http).unwrap();
            assert_eq!(llm.name(), *name);
        }
        assert!(build("nope", &http).is_none());
    }
}
