//! ElevenLabs single-context `stream-input` WebSocket adapter (protocols/tts.md C1), and the
//! multi-context path for voices written `multi:{voice_id}` ([`multi`], C2).

mod multi;
mod pump;
pub(crate) mod wire;

use crate::{Tts, TtsError, TtsRequest, TtsStream};
use futures::SinkExt;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue, Message};
use url::Url;

/// Output rates the adapter asks for as `pcm_{rate}`; ElevenLabs sends s16le mono.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 22050, 24000, 44100];

/// Text queue depth: LLM chunks arrive a few per second, so 64 is seconds of slack.
const TEXT_QUEUE: usize = 64;
/// Event queue depth: ~128 audio chunks of 100–250 ms each.
const EVENT_QUEUE: usize = 128;

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

    /// Bound on TCP + TLS + WebSocket handshake; a hung provider must not stall a turn.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

#[async_trait::async_trait]
impl Tts for ElevenLabs {
    fn name(&self) -> &'static str {
        "elevenlabs"
    }

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
        let mut request =
            url.as_str().into_client_request().map_err(|e| TtsError::Connect(format!("bad request: {e}")))?;
        let mut key = HeaderValue::from_str(req.key.expose_secret())
            .map_err(|_| TtsError::Connect("the API key is not a valid header value".into()))?;
        key.set_sensitive(true);
        request.headers_mut().insert("xi-api-key", key);

        let (mut ws, _) = tokio::time::timeout(
            self.connect_timeout,
            tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true),
        )
        .await
        .map_err(|_| TtsError::Connect("timed out".into()))?
        .map_err(handshake_error)?;

        let bos = wire::Bos {
            text: " ",
            voice_settings: wire::VoiceSettings::default(),
            generation_config: wire::GenerationConfig { chunk_length_schedule: wire::CHUNK_LENGTH_SCHEDULE.to_vec() },
            key: req.key.expose_secret(),
        };
        let bos = serde_json::to_string(&bos).map_err(|e| TtsError::Protocol(e.to_string()))?;
        ws.send(Message::text(bos)).await.map_err(|e| TtsError::Connect(format!("sending the first message: {e}")))?;

        let (text_tx, text_rx) = mpsc::channel(TEXT_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(pump::run(ws, text_rx, events_tx));
        Ok(TtsStream { text: text_tx, events: events_rx })
    }
}

/// `{base}/v1/text-to-speech/{voice}/{endpoint}?…`, with http(s) mapped to ws(s).
fn stream_url(base: &Url, voice: &str, model: &str, sample_rate: u32, endpoint: &str) -> Result<Url, TtsError> {
    let mut url = base.clone();
    let scheme = match base.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(TtsError::Connect(format!("unsupported URL scheme {other:?}"))),
    };
    url.set_scheme(scheme).map_err(|()| TtsError::Connect("cannot use this base URL".into()))?;
    url.path_segments_mut()
        .map_err(|()| TtsError::Connect("base URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(["v1", "text-to-speech", voice, endpoint]);
    url.set_query(None);
    url.query_pairs_mut()
        .append_pair("model_id", model)
        .append_pair("output_format", &format!("pcm_{sample_rate}"))
        .append_pair("auto_mode", "true");
    Ok(url)
}

fn handshake_error(e: tungstenite::Error) -> TtsError {
    match e {
        tungstenite::Error::Http(resp) => match resp.status().as_u16() {
            401 | 403 => TtsError::Unauthorized,
            429 => TtsError::RateLimited,
            s => TtsError::Connect(format!("HTTP {s}")),
        },
        other => TtsError::Connect(other.to_string()),
    }
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

#[cfg(test)]
mod loopback_tests;
#[cfg(test)]
mod multi_tests;

/// Small socket buffers: tungstenite's default 128 KiB read buffer is zero-filled on every read
/// and held per connection, which dominated CPU and memory per call. Nagle off: every frame is
/// latency-sensitive.
fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}
