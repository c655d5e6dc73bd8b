//! Key validation: the smallest real call that proves a key works, per provider, through the
//! same adapters sessions use (so in tests and sandbox it runs against the simulators).

use crate::api::AppState;
use secrecy::SecretString;
use std::time::Duration;

/// `Ok` when the provider accepted the key; else a stable code and a message without the key.
pub async fn check(s: &AppState, provider: &str, key: &SecretString) -> Result<(), (String, String)> {
    let Some(base) = s.deps.resolver.base_url(provider).cloned() else {
        return Err(("unknown_provider".into(), format!("no endpoint configured for {provider}")));
    };
    let timeout = Duration::from_secs(10);
    let timed_out = || ("timeout".to_string(), format!("{provider} did not answer in time"));
    if let Some(stt) = s.deps.providers.stt.get(provider) {
        let req = stt::SttRequest { base_url: &base, key, model: "nova-3", sample_rate: 16000, language: "en" };
        return match tokio::time::timeout(timeout, stt.connect(req)).await {
            Ok(Ok(stream)) => {
                let _ = stream.audio.send(stt::SttInput::Close).await;
                Ok(())
            }
            Ok(Err(e)) => Err((e.code().to_string(), e.to_string())),
            Err(_) => Err(timed_out()),
        };
    }
    if let Some(tts) = s.deps.providers.tts.get(provider) {
        let req = tts::TtsRequest {
            base_url: &base,
            key,
            model: "eleven_flash_v2_5",
            voice: "21m00Tcm4TlvDq8ikWAM",
            sample_rate: 16000,
        };
        return match tokio::time::timeout(timeout, tts.connect(req)).await {
            Ok(Ok(stream)) => {
                // The key travels in the first message too: wait for a refusal or a quiet socket.
                let mut events = stream.events;
                drop(stream.text);
                loop {
                    match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
                        Ok(Some(tts::TtsEvent::Error(e))) => return Err((e.code().to_string(), e.to_string())),
                        Ok(Some(_)) => continue,
                        Ok(None) | Err(_) => return Ok(()),
                    }
                }
            }
            Ok(Err(e)) => Err((e.code().to_string(), e.to_string())),
            Err(_) => Err(timed_out()),
        };
    }
    if s.deps.providers.llm.contains_key(provider) {
        let http = reqwest::Client::new();
        return match tokio::time::timeout(timeout, llm::validate_key(provider, &http, &base, key)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err((e.code().to_string(), e.to_string())),
            Err(_) => Err(timed_out()),
        };
    }
    Err(("not_supported".into(), format!("no adapter for {provider} yet, so its key cannot be checked")))
}
