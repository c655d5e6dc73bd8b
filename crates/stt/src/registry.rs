//! Provider name → adapter and default endpoint. A new provider = its module plus one line in
//! [`PROVIDERS`].

use crate::{Deepgram, Stt};
use std::sync::Arc;

/// One registered provider: its rate-table name, its public endpoint, and its adapter.
pub struct Entry {
    pub name: &'static str,
    pub default_url: &'static str,
    pub build: fn() -> Arc<dyn Stt>,
}

pub const PROVIDERS: &[Entry] = &[
    Entry {
        name: "transcribe",
        default_url: "wss://transcribestreaming.us-east-1.amazonaws.com:8443",
        build: || Arc::new(crate::Transcribe::new()),
    },
    Entry {
        name: "assemblyai",
        default_url: "wss://streaming.assemblyai.com",
        build: || Arc::new(crate::AssemblyAi::new()),
    },
    Entry { name: "soniox", default_url: "wss://stt-rt.soniox.com", build: || Arc::new(crate::Soniox::new()) },
    Entry {
        name: "azure",
        default_url: "wss://eastus.stt.speech.microsoft.com",
        build: || Arc::new(crate::Azure::new()),
    },
    Entry { name: "deepgram", default_url: "wss://api.deepgram.com", build: || Arc::new(Deepgram::new()) },
    Entry { name: "cartesia", default_url: "wss://api.cartesia.ai", build: || Arc::new(crate::Cartesia::new()) },
    Entry { name: "gladia", default_url: "https://api.gladia.io", build: || Arc::new(crate::Gladia::new()) },
    Entry { name: "elevenlabs", default_url: "wss://api.elevenlabs.io", build: || Arc::new(crate::ElevenLabs::new()) },
];

/// The adapter for `name`, or `None` if this build does not know it.
pub fn build(name: &str) -> Option<Arc<dyn Stt>> {
    PROVIDERS.iter().find(|e| e.name == name).map(|e| (e.build)())
}

/// Every name [`build`] accepts, for config validation and dependency wiring.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROVIDERS.iter().map(|e| e.name)
}

/// The provider's public endpoint, used unless `--provider-url` or sandbox mode overrides it.
pub fn default_url(name: &str) -> Option<&'static str> {
    PROVIDERS.iter().find(|e| e.name == name).map(|e| e.default_url)
}
