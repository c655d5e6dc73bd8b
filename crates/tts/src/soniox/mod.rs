//! Soniox real-time TTS WebSocket adapter (protocols/llm-more.md E4):
//! `wss://tts-rt.soniox.com/tts-websocket`, no auth header; the key rides in each stream's
//! config message. One socket per [`TtsStream`]; a flush ends the Soniox stream with
//! `text_end` (Soniox has no other flush), and later text opens a new `stream_id` on the same
//! socket. Language is fixed to `en` (the request has no language field).

mod dialect;
pub(crate) mod wire;

use crate::socket::{self, pump};
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use futures::SinkExt;
use secrecy::{ExposeSecret, SecretString};
use tokio_tungstenite::tungstenite::Message;
use url::Url;

/// `pcm_s16le` rates Soniox offers that a session may ask for (no 22050).
pub const SAMPLE_RATES: [u32; 4] = [8000, 16000, 24000, 44100];
/// A stock voice from Soniox's own examples.
pub const DEFAULT_VOICE: &str = "Adrian";
/// The GA real-time model, used by key checks.
pub const DEFAULT_MODEL: &str = "tts-rt-v1";
const LANGUAGE: &str = "en";

/// Streams text to Soniox and PCM back. Holds no key beyond the stream that uses it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Soniox;

/// What every stream's config message repeats.
pub(crate) struct StreamSettings {
    pub key: SecretString,
    pub model: String,
    pub voice: String,
    pub sample_rate: u32,
}

impl StreamSettings {
    fn config(&self, stream_id: &str) -> Result<String, TtsError> {
        let cfg = wire::Config {
            api_key: self.key.expose_secret(),
            stream_id,
            model: &self.model,
            language: LANGUAGE,
            voice: &self.voice,
            audio_format: "pcm_s16le",
            sample_rate: self.sample_rate,
            return_timestamps: true,
        };
        serde_json::to_string(&cfg).map_err(|e| TtsError::Protocol(e.to_string()))
    }
}

#[async_trait::async_trait]
impl Tts for Soniox {
    /// Soniox's REST model list lives on another host (`api.soniox.com`) than the TTS socket,
    /// so the check opens a stream and cancels it: a bad key is refused with `error_code` 401
    /// and no character is billed.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        crate::check_by_connecting(self, base_url, key, DEFAULT_MODEL, DEFAULT_VOICE).await
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        let url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["tts-websocket"])?;
        // No auth header: the key rides in each stream's config message.
        let mut ws = wsclient::open(&url, wsclient::HeaderMap::new(), socket::CONNECT_TIMEOUT).await?;

        let settings = StreamSettings {
            key: req.key.clone(),
            model: req.model.to_string(),
            voice: req.voice.to_string(),
            sample_rate: req.sample_rate,
        };
        // Configure the first stream now so a refused key shows up before any text is spent.
        let prefix = uuid::Uuid::new_v4().simple().to_string();
        let first = format!("{prefix}-0");
        ws.send(Message::text(settings.config(&first)?))
            .await
            .map_err(|e| TtsError::Connect(format!("sending the stream config: {e}")))?;

        Ok(pump::spawn(ws, dialect::Streams::new(settings, prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_url_maps_scheme() {
        let socket_url = |base: &Url| wsclient::endpoint(base, wsclient::Scheme::Ws, &["tts-websocket"]);
        let url = socket_url(&Url::parse("wss://tts-rt.soniox.com").unwrap()).unwrap();
        assert_eq!(url.as_str(), "wss://tts-rt.soniox.com/tts-websocket");
        let url = socket_url(&Url::parse("http://127.0.0.1:5/").unwrap()).unwrap();
        assert_eq!(url.as_str(), "ws://127.0.0.1:5/tts-websocket");
    }

    #[test]
    fn config_has_the_required_fields() {
        let s = StreamSettings {
            key: "k".to_string().into(),
            model: "tts-rt-v2".into(),
            voice: "Adrian".into(),
            sample_rate: 24000,
        };
        let v: serde_json::Value = serde_json::from_str(&s.config("a-0").unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"api_key":"k","stream_id":"a-0","model":"tts-rt-v2","language":"en","voice":"Adrian",
                "audio_format":"pcm_s16le","sample_rate":24000,"return_timestamps":true})
        );
    }
}
