//! Provider adapters by name. A new provider = `mod foo;` in lib.rs + one line in each function;
//! a new OpenAI-compatible one = a row in `compat` + one line here.

use crate::compat;
use crate::{Anthropic, Gemini, Llm, OpenAi};
use std::sync::Arc;

/// The adapter called `name`, sharing `http`'s connection pool; `None` for an unknown name.
pub fn build(name: &str, http: &reqwest::Client) -> Option<Arc<dyn Llm>> {
    let family = |p: &'static compat::CompatProvider| -> Arc<dyn Llm> { Arc::new(OpenAi::compatible(http.clone(), p)) };
    let llm: Arc<dyn Llm> = match name {
        "openai" => Arc::new(OpenAi::new(http.clone())),
        "anthropic" => Arc::new(Anthropic::new(http.clone())),
        "google" => Arc::new(Gemini::new(http.clone())),
        "groq" => family(&compat::GROQ),
        "cerebras" => family(&compat::CEREBRAS),
        "deepseek" => family(&compat::DEEPSEEK),
        "openrouter" => family(&compat::OPENROUTER),
        "xai" => family(&compat::XAI),
        "mistral" => family(&compat::MISTRAL),
        "together" => family(&compat::TOGETHER),
        "fireworks" => family(&compat::FIREWORKS),
        "novita" => family(&compat::NOVITA),
        "hyperbolic" => family(&compat::HYPERBOLIC),
        "sambanova" => family(&compat::SAMBANOVA),
        "nvidia" => family(&compat::NVIDIA),
        "chutes" => family(&compat::CHUTES),
        "akash" => family(&compat::AKASH),
        "morpheus" => family(&compat::MORPHEUS),
        "vercel" => family(&compat::VERCEL),
        _ => return None,
    };
    Some(llm)
}

/// Every name [`build`] accepts.
pub fn names() -> &'static [&'static str] {
    &[
        "openai",
        "anthropic",
        "google",
        "groq",
        "cerebras",
        "deepseek",
        "openrouter",
        "xai",
        "mistral",
        "together",
        "fireworks",
        "novita",
        "hyperbolic",
        "sambanova",
        "nvidia",
        "chutes",
        "akash",
        "morpheus",
        "vercel",
    ]
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
            assert!(compat::default_base_url(name).is_some(), "{name}");
        }
        assert!(build("nope", &http).is_none());
    }

    #[test]
    fn the_whole_family_is_registered() {
        for p in compat::FAMILY {
            assert!(names().contains(&p.name), "{}", p.name);
        }
        assert_eq!(names().len(), compat::FAMILY.len() + 3);
    }
}
