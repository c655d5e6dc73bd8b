//! Deepgram Aura over the `/v1/speak` websocket (protocols/tts.md C5): JSON control messages
//! up, raw linear16 binary frames down, no timings.

pub(crate) mod wire;

use crate::socket::{self, pump};
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::SecretString;
use tokio::sync::mpsc;
use url::Url;

/// Aura's stock English voice.
pub const DEFAULT_VOICE: &str = "thalia-en";
/// linear16 rates the socket offers.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];

const TEXT_QUEUE: usize = 64;
const EVENT_QUEUE: usize = 128;

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
    fn name(&self) -> &'static str {
        "deepgram"
    }

    /// `GET /v1/models`: authenticated, unbilled.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        let url = socket::endpoint(base_url, false, &["v1", "models"])?;
        socket::check_get(&self.http, url, &[("authorization", socket::secret_header("Token ", key)?)]).await
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        let mut url = socket::endpoint(req.base_url, true, &["v1", "speak"])?;
        url.query_pairs_mut()
            .append_pair("model", &speak_model(req.model, req.voice))
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &req.sample_rate.to_string());
        let ws = socket::connect(&url, vec![("authorization", socket::secret_header("Token ", req.key)?)]).await?;

        let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(pump::run(ws, wire::DeepgramDialect::default(), text_rx, events_tx));
        Ok(TtsStream { text: text_tx, events: events_rx })
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

#[cfg(test)]
mod loopback_tests;
