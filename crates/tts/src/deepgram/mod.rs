//! Deepgram Aura over the `/v1/speak` websocket (protocols/tts.md C5): JSON control messages
//! up, raw linear16 binary frames down, no timings.

pub(crate) mod wire;

use crate::socket::{self, pump};
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::SecretString;
use url::Url;

/// Aura's stock English voice.
pub const DEFAULT_VOICE: &str = "thalia-en";
/// linear16 rates the socket offers.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];

/// Streams text to Deepgram Aura and PCM back. Holds no key: each call brings its own.
#[derive(Debug, Clone, Default)]
pub struct DeepgramAura {
    http: reqwest::Client,
}

impl DeepgramAura {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Deepgram names model and voice together: model `aura-2` + voice `thalia-en` →
/// `aura-2-thalia-en`. A voice that is already a full model name is used as is.
pub(crate) fn speak_model(model: &str, voice: &str) -> String {
    let voice = if voice.is_empty() { DEFAULT_VOICE } else { voice };
    let model = model.trim_end_matches('-');
    if voice.starts_with("aura-") || model.is_empty() {
        return voice.to_string();
    }
    match voice.strip_prefix(model).and_then(|rest| rest.strip_prefix('-')) {
        Some(_) => voice.to_string(),
        None => format!("{model}-{voice}"),
    }
}

#[async_trait::async_trait]
impl Tts for DeepgramAura {
    /// `GET /v1/models`: authenticated, unbilled.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        let url = wsclient::endpoint(base_url, wsclient::Scheme::Http, &["v1", "models"])?;
        socket::check_get(&self.http, url, &[("authorization", socket::secret_header("Token ", key)?)]).await
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["v1", "speak"])?;
        url.query_pairs_mut()
            .append_pair("model", &speak_model(req.model, req.voice))
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &req.sample_rate.to_string());
        let headers = wsclient::headers([("authorization", socket::secret_header("Token ", req.key)?)]);
        let ws = socket::connect(&url, headers).await?;
        Ok(pump::spawn(ws, wire::DeepgramDialect::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_and_voice_make_one_model_name() {
        assert_eq!(speak_model("aura-2", "thalia-en"), "aura-2-thalia-en");
        assert_eq!(speak_model("aura-2", ""), "aura-2-thalia-en");
        assert_eq!(speak_model("aura-2", "aura-2-andromeda-en"), "aura-2-andromeda-en");
        assert_eq!(speak_model("aura", "aura-asteria-en"), "aura-asteria-en");
        assert_eq!(speak_model("", "luna-en"), "luna-en");
    }
}
