//! Deepgram's TTS sockets (protocols/tts.md C5): Aura on `/v1/speak` and Flux TTS on
//! `/v2/speak`, chosen by the model name (`aura-…` or `flux-…`). Both take JSON control
//! messages up and send raw linear16 binary frames down, without timings.

pub(crate) mod flux;
pub(crate) mod wire;

use crate::socket::{self, pump};
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::SecretString;
use url::Url;

/// Aura's stock English voice.
pub const DEFAULT_VOICE: &str = "thalia-en";
/// linear16 rates the socket offers.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];

/// Streams text to Deepgram Aura or Flux TTS and PCM back. Holds no key: each call brings its
/// own.
#[derive(Debug, Clone, Default)]
pub struct DeepgramTts {
    http: reqwest::Client,
}

impl DeepgramTts {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Deepgram names model and voice together: model `aura-2` + voice `thalia-en` →
/// `aura-2-thalia-en`, model `flux` + voice `alexis-en` → `flux-alexis-en`. A voice that is
/// already a full model name is used as is.
pub(crate) fn speak_model(model: &str, voice: &str) -> String {
    let model = model.trim_end_matches('-');
    let voice = match voice {
        "" if model == "flux" => flux::DEFAULT_VOICE,
        "" => DEFAULT_VOICE,
        v => v,
    };
    if voice.starts_with("aura-") || voice.starts_with("flux-") || model.is_empty() {
        return voice.to_string();
    }
    match voice.strip_prefix(model).and_then(|rest| rest.strip_prefix('-')) {
        Some(_) => voice.to_string(),
        None => format!("{model}-{voice}"),
    }
}

#[async_trait::async_trait]
impl Tts for DeepgramTts {
    /// `GET /v1/models`: authenticated, unbilled.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        let url = wsclient::endpoint(base_url, wsclient::Scheme::Http, &["v1", "models"])?;
        socket::check_get(&self.http, url, &[("authorization", socket::secret_header("Token ", key)?)]).await
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        let model = speak_model(req.model, req.voice);
        let flux = model.starts_with("flux-");
        let (version, rates) = if flux { ("v2", &flux::SAMPLE_RATES[..]) } else { ("v1", &SAMPLE_RATES[..]) };
        if !rates.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &[version, "speak"])?;
        url.query_pairs_mut()
            .append_pair("model", &model)
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &req.sample_rate.to_string());
        let headers = wsclient::headers([("authorization", socket::secret_header("Token ", req.key)?)]);
        let ws = socket::connect(&url, headers).await?;
        Ok(if flux {
            pump::spawn(ws, flux::FluxDialect::default())
        } else {
            pump::spawn(ws, wire::DeepgramDialect::default())
        })
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
        assert_eq!(speak_model("flux", "alexis-en"), "flux-alexis-en");
        assert_eq!(speak_model("flux", ""), "flux-alexis-en");
        assert_eq!(speak_model("flux", "flux-haley-en"), "flux-haley-en");
    }
}
