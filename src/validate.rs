//! Key validation: the smallest real call that proves a key works, per provider, through the
//! same adapters sessions use (so in tests and sandbox it runs against the simulators).

use crate::api::AppState;
use billing::Service;
use secrecy::SecretString;
use std::time::Duration;

/// `Ok` when the provider accepted the key; else a stable code and a message without the key.
/// A provider with several services (Deepgram: STT and TTS) is checked through the first.
pub async fn check(s: &AppState, provider: &str, key: &SecretString) -> Result<(), (String, String)> {
    let p = &s.deps.providers;
    let service = if p.stt.contains_key(provider) {
        Service::Stt
    } else if p.tts.contains_key(provider) {
        Service::Tts
    } else if p.llm.contains_key(provider) {
        Service::Llm
    } else {
        return Err(("not_supported".into(), format!("no adapter for {provider}, so its key cannot be checked")));
    };
    let Some(base) = s.deps.resolver.base_url(service.as_str(), provider).cloned() else {
        return Err(("unknown_provider".into(), format!("no endpoint configured for {provider}")));
    };
    let checked = async {
        match service {
            Service::Stt => match p.stt.get(provider) {
                Some(a) => a.check_key(&base, key).await.map_err(|e| (e.code().to_string(), e.to_string())),
                None => Ok(()),
            },
            Service::Tts => match p.tts.get(provider) {
                Some(a) => a.check_key(&base, key).await.map_err(|e| (e.code().to_string(), e.to_string())),
                None => Ok(()),
            },
            _ => {
                let http = reqwest::Client::new();
                llm::validate_key(provider, &http, &base, key).await.map_err(|e| (e.code().to_string(), e.to_string()))
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), checked).await {
        Ok(r) => r,
        Err(_) => Err(("timeout".to_string(), format!("{provider} did not answer in time"))),
    }
}
