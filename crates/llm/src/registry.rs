//! Provider adapters by name. A new provider = its module plus one line in [`PROVIDERS`]; a new
//! OpenAI-compatible one = a row in `compat` plus one line here.

use crate::compat;
use crate::{Anthropic, Azure, Bedrock, Gemini, Llm, OpenAi};
use std::sync::Arc;

/// One registered provider: its rate-table name and its adapter, sharing an HTTP client.
pub struct Entry {
    pub name: &'static str,
    pub build: fn(&reqwest::Client) -> Arc<dyn Llm>,
}

pub const PROVIDERS: &[Entry] = &[
    Entry { name: "openai", build: |h| Arc::new(OpenAi::new(h.clone())) },
    Entry { name: "anthropic", build: |h| Arc::new(Anthropic { http: h.clone() }) },
    Entry { name: "google", build: |h| Arc::new(Gemini { http: h.clone() }) },
    Entry { name: "groq", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::GROQ)) },
    Entry { name: "cerebras", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::CEREBRAS)) },
    Entry { name: "deepseek", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::DEEPSEEK)) },
    Entry { name: "openrouter", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::OPENROUTER)) },
    Entry { name: "xai", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::XAI)) },
    Entry { name: "mistral", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::MISTRAL)) },
    Entry { name: "together", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::TOGETHER)) },
    Entry { name: "fireworks", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::FIREWORKS)) },
    Entry { name: "novita", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::NOVITA)) },
    Entry { name: "hyperbolic", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::HYPERBOLIC)) },
    Entry { name: "sambanova", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::SAMBANOVA)) },
    Entry { name: "nvidia", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::NVIDIA)) },
    Entry { name: "chutes", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::CHUTES)) },
    Entry { name: "akash", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::AKASH)) },
    Entry { name: "morpheus", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::MORPHEUS)) },
    Entry { name: "vercel", build: |h| Arc::new(OpenAi::compatible(h.clone(), &compat::VERCEL)) },
    Entry { name: "azure", build: |h| Arc::new(Azure { http: h.clone() }) },
    Entry { name: "bedrock", build: |h| Arc::new(Bedrock { http: h.clone() }) },
];

/// The adapter called `name`, sharing `http`'s connection pool; `None` for an unknown name.
pub fn build(name: &str, http: &reqwest::Client) -> Option<Arc<dyn Llm>> {
    PROVIDERS.iter().find(|e| e.name == name).map(|e| (e.build)(http))
}

/// Every name [`build`] accepts.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROVIDERS.iter().map(|e| e.name)
}

/// The provider's public endpoint, used unless `--provider-url` or sandbox mode overrides it.
pub fn default_url(name: &str) -> Option<&'static str> {
    compat::default_base_url(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_family_is_registered() {
        for p in compat::FAMILY {
            assert!(names().any(|n| n == p.name), "{}", p.name);
        }
    }
}
