use crate::SessionHub;
use billing::store::Store;
use billing::{AgentSpec, PlanResolver};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Provider adapters by name, built once at startup from each crate's registry.
#[derive(Clone, Default)]
pub struct Providers {
    pub stt: HashMap<String, Arc<dyn stt::Stt>>,
    pub llm: HashMap<String, Arc<dyn llm::Llm>>,
    pub tts: HashMap<String, Arc<dyn tts::Tts>>,
}

impl Providers {
    /// Every provider the registries know, sharing one HTTP client (connection pool).
    pub fn from_registries(http: &reqwest::Client) -> Self {
        let mut p = Providers::default();
        for name in stt::registry::names() {
            if let Some(a) = stt::registry::build(name) {
                p.stt.insert((*name).to_string(), a);
            }
        }
        for name in llm::registry::names() {
            if let Some(a) = llm::registry::build(name, http) {
                p.llm.insert((*name).to_string(), a);
            }
        }
        for name in tts::registry::names() {
            if let Some(a) = tts::registry::build(name) {
                p.tts.insert((*name).to_string(), a);
            }
        }
        p
    }
}

/// Everything a session needs from the server, shared by all sessions.
#[derive(Clone)]
pub struct SessionDeps {
    pub resolver: PlanResolver,
    pub store: Arc<dyn Store>,
    pub hub: SessionHub,
    pub providers: Providers,
    pub agent: AgentSpec,
    pub org_id: String,
    /// How often usage is written to the store while a call runs (a crash loses at most this).
    pub checkpoint_every: Duration,
    /// Rate of the linear16 audio sent to STT.
    pub stt_sample_rate: u32,
    /// Rate of the PCM asked from TTS.
    pub tts_sample_rate: u32,
}
