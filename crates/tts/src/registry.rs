//! Provider name → adapter and default endpoint. A new provider = its module plus one line in
//! [`PROVIDERS`].

use crate::{ElevenLabs, Tts};
use std::sync::Arc;

/// One registered provider: its rate-table name, its public endpoint, a stock voice (used by
/// key checks and by agents that name none), and its adapter.
pub struct Entry {
    pub name: &'static str,
    pub default_url: &'static str,
    pub default_voice: &'static str,
    pub build: fn() -> Arc<dyn Tts>,
}

pub const PROVIDERS: &[Entry] = &[
    Entry {
        name: "polly",
        default_url: "https://polly.us-east-1.amazonaws.com",
        default_voice: crate::polly::DEFAULT_VOICE,
        build: || Arc::new(crate::Polly::new()),
    },
    Entry {
        name: "elevenlabs",
        default_url: "wss://api.elevenlabs.io",
        default_voice: "21m00Tcm4TlvDq8ikWAM",
        build: || Arc::new(ElevenLabs::new()),
    },
    Entry {
        name: "azure",
        default_url: "wss://eastus.tts.speech.microsoft.com",
        default_voice: crate::azure::DEFAULT_VOICE,
        build: || Arc::new(crate::Azure),
    },
    Entry {
        name: "xai",
        default_url: "wss://api.x.ai",
        default_voice: crate::xai::DEFAULT_VOICE,
        build: || Arc::new(crate::Xai),
    },
    Entry {
        name: "soniox",
        default_url: "wss://tts-rt.soniox.com",
        default_voice: crate::soniox::DEFAULT_VOICE,
        build: || Arc::new(crate::Soniox),
    },
    Entry {
        name: "cartesia",
        default_url: "wss://api.cartesia.ai",
        default_voice: crate::cartesia::DEFAULT_VOICE,
        build: || Arc::new(crate::Cartesia::new()),
    },
    Entry {
        name: "deepgram",
        default_url: "wss://api.deepgram.com",
        default_voice: crate::deepgram::DEFAULT_VOICE,
        build: || Arc::new(crate::DeepgramTts::new()),
    },
    Entry {
        name: "rime",
        default_url: "wss://users-ws.rime.ai",
        default_voice: crate::rime::DEFAULT_VOICE,
        build: || Arc::new(crate::Rime),
    },
];

/// The adapter for `name`, or `None` if this build does not know it.
pub fn build(name: &str) -> Option<Arc<dyn Tts>> {
    PROVIDERS.iter().find(|e| e.name == name).map(|e| (e.build)())
}

/// Every name [`build`] accepts, for config validation and dependency wiring.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROVIDERS.iter().map(|e| e.name)
}

/// The provider's stock voice.
pub fn default_voice(name: &str) -> Option<&'static str> {
    PROVIDERS.iter().find(|e| e.name == name).map(|e| e.default_voice)
}

/// The provider's public endpoint, used unless `--provider-url` or sandbox mode overrides it.
pub fn default_url(name: &str) -> Option<&'static str> {
    PROVIDERS.iter().find(|e| e.name == name).map(|e| e.default_url)
}
