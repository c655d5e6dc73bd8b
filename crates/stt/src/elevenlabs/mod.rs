//! ElevenLabs Scribe realtime adapter (`/v1/speech-to-text/realtime`, protocols/stt.md B4).
//!
//! Scribe refuses a bad key with an `auth_error` message after the upgrade, so `connect` waits
//! for `session_started` before handing the stream out. Commits come from the server's VAD
//! (`commit_strategy=vad`, the end of an utterance) or from [`SttInput::Finalize`]. Scribe
//! reports no audio duration, so usage is always counted locally (`estimated`).
//!
//! [`SttInput::Finalize`]: crate::SttInput::Finalize

pub(crate) mod wire;

use crate::wspump::{self, Opts};
use crate::{Stt, SttError, SttRequest, SttStream};
use futures::StreamExt;
use secrecy::SecretString;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

/// The PCM rates Scribe realtime accepts (`audio_format=pcm_<rate>`).
const SAMPLE_RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// Streams linear16 audio to ElevenLabs Scribe realtime. Holds no key.
#[derive(Debug, Clone)]
pub struct ElevenLabs {
    connect_timeout: Duration,
    keepalive_after: Duration,
    close_wait: Duration,
    vad_silence_s: f64,
}

impl Default for ElevenLabs {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            keepalive_after: Duration::from_secs(10),
            close_wait: Duration::from_secs(3),
            // Scribe's default is 1.5 s: far too slow for a phone turn.
            vad_silence_s: 0.5,
        }
    }
}

impl ElevenLabs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Silence after which the server's VAD commits (`vad_silence_threshold_secs`).
    pub fn with_vad_silence(mut self, silence: Duration) -> Self {
        self.vad_silence_s = silence.as_secs_f64();
        self
    }

    fn realtime_url(&self, req: &SttRequest<'_>) -> Result<Url, SttError> {
        let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["v1", "speech-to-text", "realtime"])?;
        url.query_pairs_mut()
            .append_pair("model_id", req.model)
            .append_pair("audio_format", &format!("pcm_{}", req.sample_rate))
            .append_pair("commit_strategy", "vad")
            .append_pair("vad_silence_threshold_secs", &format!("{:.2}", self.vad_silence_s))
            .append_pair("language_code", primary_language(req.language));
        Ok(url)
    }
}

/// `en-US` → `en`: Scribe takes ISO 639 codes.
fn primary_language(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

#[async_trait::async_trait]
impl Stt for ElevenLabs {
    /// `GET /v1/models`: free, and readable by STT-only keys (unlike `/v1/user`).
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        let url = wsclient::endpoint(base_url, wsclient::Scheme::Http, &["v1", "models"])?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("xi-api-key", wsclient::secret_header("", key)?);
        wspump::check_get(url, headers).await
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(SttError::Connect(format!("ElevenLabs does not take {} Hz PCM", req.sample_rate)));
        }
        let url = self.realtime_url(&req)?;
        let headers = wsclient::headers([("xi-api-key", wsclient::secret_header("", req.key)?)]);
        let started = async {
            let mut ws = wsclient::open(&url, headers, self.connect_timeout).await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let msg = wire::parse(&text)?;
                        if msg.message_type == "session_started" {
                            return Ok(ws);
                        }
                        if let Some(e) = wire::error_of(&msg) {
                            return Err(e);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) =
                            frame.map(|f| (f.code.into(), f.reason.to_string())).unwrap_or((1005, String::new()));
                        return Err(SttError::Closed { code, reason });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(SttError::Connect(e.to_string())),
                    None => return Err(SttError::Connect("closed before session_started".into())),
                }
            }
        };
        let ws = tokio::time::timeout(self.connect_timeout, started).await.map_err(|_| SttError::Timeout)??;
        let opts =
            Opts { sample_rate: req.sample_rate, keepalive_after: self.keepalive_after, close_wait: self.close_wait };
        Ok(wspump::spawn(ws, wspump::Strict::new(wire::ElevenLabsWire::new(req.sample_rate)), opts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_carries_format_strategy_and_language() {
        let req = SttRequest::for_test("wss://api.elevenlabs.io", "scribe_v2_realtime", 16000, "en-US");
        assert_eq!(
            ElevenLabs::new().realtime_url(&req).unwrap().as_str(),
            "wss://api.elevenlabs.io/v1/speech-to-text/realtime?model_id=scribe_v2_realtime&audio_format=pcm_16000&commit_strategy=vad&vad_silence_threshold_secs=0.50&language_code=en"
        );
    }
}
