//! Rime over the `ws3` JSON websocket (protocols/tts.md C4): server-side sentence
//! segmentation, raw PCM at the requested rate, word timestamps as [`crate::Alignment`].

pub(crate) mod wire;

use crate::socket::{self, pump};
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::SecretString;
use url::Url;

/// The stock voice of Rime's Mist models (Coda's is `lyra`).
pub const DEFAULT_VOICE: &str = "cove";
/// Rates the adapter asks for; Rime resamples server-side.
pub const SAMPLE_RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// Streams text to Rime and PCM back. Holds no key: each call brings its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rime;

fn ws3_url(base: &Url, model: &str, voice: &str, sample_rate: u32) -> Result<Url, TtsError> {
    let mut url = wsclient::endpoint(base, wsclient::Scheme::Ws, &["ws3"])?;
    url.query_pairs_mut()
        .append_pair("speaker", if voice.is_empty() { DEFAULT_VOICE } else { voice })
        .append_pair("modelId", model)
        .append_pair("audioFormat", "pcm")
        .append_pair("samplingRate", &sample_rate.to_string())
        // LLM text arrives in fragments: let Rime voice whole sentences.
        .append_pair("segment", "bySentence");
    Ok(url)
}

#[async_trait::async_trait]
impl Tts for Rime {
    /// Rime has no free authenticated REST call; the socket refuses a bad key at the upgrade.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        crate::check_by_connecting(self, base_url, key, "mistv2", DEFAULT_VOICE).await
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        let url = ws3_url(req.base_url, req.model, req.voice, req.sample_rate)?;
        let headers = wsclient::headers([("authorization", socket::secret_header("Bearer ", req.key)?)]);
        let ws = socket::connect(&url, headers).await?;
        Ok(pump::spawn(ws, wire::RimeDialect::new(uuid::Uuid::new_v4().simple().to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_carries_voice_model_format_and_rate() {
        let base = Url::parse("wss://users-ws.rime.ai").unwrap();
        assert_eq!(
            ws3_url(&base, "mistv2", "", 24000).unwrap().as_str(),
            "wss://users-ws.rime.ai/ws3?speaker=cove&modelId=mistv2&audioFormat=pcm&samplingRate=24000&segment=bySentence"
        );
    }
}
