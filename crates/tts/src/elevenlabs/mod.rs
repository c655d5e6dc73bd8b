//! ElevenLabs single-context `stream-input` WebSocket adapter (protocols/tts.md C1), and the
//! multi-context path for voices written `multi:{voice_id}` ([`multi`], C2).

mod dialect;
mod multi;
pub(crate) mod wire;

use crate::socket::pump;
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use futures::SinkExt;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

/// Output rates the adapter asks for as `pcm_{rate}`; ElevenLabs sends s16le mono.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 22050, 24000, 44100];

/// Streams text to ElevenLabs and PCM back. Holds no key: each call brings its own, except
/// that a pooled multi-context socket keeps its key while open (see [`multi`]).
#[derive(Debug, Clone)]
pub struct ElevenLabs {
    connect_timeout: Duration,
    pool: std::sync::Arc<multi::Pool>,
}

impl Default for ElevenLabs {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(10), pool: Default::default() }
    }
}

impl ElevenLabs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Close a pooled multi-context socket this long after its last context (default 15 s,
    /// inside the provider's 20 s inactivity limit). Starts a fresh pool: set it when building.
    pub fn with_socket_idle(mut self, idle: Duration) -> Self {
        let timings = multi::Timings { socket_idle: idle, ..self.pool.timings() };
        self.pool = std::sync::Arc::new(multi::Pool::new(timings));
        self
    }

    /// Send a quiet multi-context stream a keep-alive (empty text) after this long without
    /// input (default 10 s), so long LLM pauses do not hit the provider's inactivity limit.
    /// Starts a fresh pool: set it when building.
    pub fn with_keep_alive(mut self, every: Duration) -> Self {
        let timings = multi::Timings { keep_alive: every, ..self.pool.timings() };
        self.pool = std::sync::Arc::new(multi::Pool::new(timings));
        self
    }
}

#[async_trait::async_trait]
impl Tts for ElevenLabs {
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        crate::check_by_connecting(self, base_url, key, "eleven_flash_v2_5", "21m00Tcm4TlvDq8ikWAM").await
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        if let Some(voice) = req.voice.strip_prefix(multi::VOICE_PREFIX) {
            return self.pool.connect(self.connect_timeout, &req, voice).await;
        }
        let url = stream_url(req.base_url, req.voice, req.model, req.sample_rate, "stream-input")?;
        let mut ws = open(&url, req.key, self.connect_timeout).await?;

        let bos = wire::Bos {
            text: " ",
            voice_settings: wire::VoiceSettings::default(),
            generation_config: wire::GenerationConfig { chunk_length_schedule: wire::CHUNK_LENGTH_SCHEDULE.to_vec() },
            key: req.key.expose_secret(),
        };
        let bos = serde_json::to_string(&bos).map_err(|e| TtsError::Protocol(e.to_string()))?;
        ws.send(Message::text(bos)).await.map_err(|e| TtsError::Connect(format!("sending the first message: {e}")))?;

        Ok(pump::spawn(ws, dialect::StreamInput))
    }
}

/// Both endpoints take the key in `xi-api-key` at the upgrade.
async fn open(url: &Url, key: &SecretString, timeout: Duration) -> Result<wsclient::Ws, TtsError> {
    let headers = wsclient::headers([("xi-api-key", wsclient::secret_header("", key)?)]);
    Ok(wsclient::open(url, headers, timeout).await?)
}

/// `{base}/v1/text-to-speech/{voice}/{endpoint}?…`, with http(s) mapped to ws(s).
fn stream_url(base: &Url, voice: &str, model: &str, sample_rate: u32, endpoint: &str) -> Result<Url, TtsError> {
    let mut url = wsclient::endpoint(base, wsclient::Scheme::Ws, &["v1", "text-to-speech", voice, endpoint])?;
    url.query_pairs_mut()
        .append_pair("model_id", model)
        .append_pair("output_format", &format!("pcm_{sample_rate}"))
        .append_pair("auto_mode", "true");
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_maps_scheme_and_encodes_voice() {
        let base = Url::parse("https://api.elevenlabs.io").unwrap();
        let url = stream_url(&base, "voice 1", "eleven_flash_v2_5", 16000, "stream-input").unwrap();
        assert_eq!(
            url.as_str(),
            "wss://api.elevenlabs.io/v1/text-to-speech/voice%201/stream-input?model_id=eleven_flash_v2_5&output_format=pcm_16000&auto_mode=true"
        );
        let base = Url::parse("ws://127.0.0.1:1234/").unwrap();
        let url = stream_url(&base, "v", "m", 8000, "stream-input").unwrap();
        assert_eq!(
            url.as_str(),
            "ws://127.0.0.1:1234/v1/text-to-speech/v/stream-input?model_id=m&output_format=pcm_8000&auto_mode=true"
        );
        assert!(stream_url(&Url::parse("ftp://x").unwrap(), "v", "m", 8000, "stream-input").is_err());
    }
}
