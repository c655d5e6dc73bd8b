//! xAI streaming TTS WebSocket adapter (protocols/llm-more.md E3.2): `wss://api.x.ai/v1/tts`
//! with `Authorization: Bearer`, `text.delta` in, base64 PCM `audio.delta` out, and one
//! `text.done` per flush answered by `audio.done`.
//!
//! The model (`grok-voice`) names the rate-table row only: the socket takes voice, language,
//! codec and rate in its query. Language is `auto` because an agent's text decides it.

mod dialect;
pub(crate) mod wire;

use crate::socket::{self, pump};
use crate::{Tts, TtsError, TtsRequest, TtsStream};
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use wsclient::OpenError;

/// Rates asked for with `codec=pcm`; xAI sends s16le mono.
pub const SAMPLE_RATES: [u32; 5] = [8000, 16000, 22050, 24000, 44100];
/// xAI's documented default voice (also pipecat's).
pub const DEFAULT_VOICE: &str = "eve";

/// Streams text to xAI and PCM back. Holds no key: each call brings its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Xai;

#[async_trait::async_trait]
impl Tts for Xai {
    /// `GET /v1/api-key` (protocols/llm-more.md E5): free, and it also reports a key that is
    /// valid but blocked or disabled, which a socket would only refuse later.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), TtsError> {
        let url = wsclient::endpoint(base_url, wsclient::Scheme::Http, &["v1", "api-key"])?;
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
            .map_err(|_| TtsError::Connect("the API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(socket::CONNECT_TIMEOUT)
            .build()
            .map_err(|e| TtsError::Connect(format!("HTTP client: {e}")))?;
        let resp = client
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .send()
            .await
            .map_err(|e| TtsError::Connect(e.without_url().to_string()))?;
        match resp.status().as_u16() {
            200 => {
                let info: KeyInfo = resp.json().await.map_err(|e| TtsError::Protocol(e.without_url().to_string()))?;
                if info.api_key_blocked || info.api_key_disabled || info.team_blocked {
                    return Err(TtsError::Unauthorized);
                }
                Ok(())
            }
            400 | 401 | 403 => Err(TtsError::Unauthorized),
            429 => Err(TtsError::RateLimited),
            s => Err(TtsError::Connect(format!("HTTP {s}"))),
        }
    }

    async fn connect(&self, req: TtsRequest<'_>) -> Result<TtsStream, TtsError> {
        if !SAMPLE_RATES.contains(&req.sample_rate) {
            return Err(TtsError::UnsupportedSampleRate(req.sample_rate));
        }
        let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["v1", "tts"])?;
        url.query_pairs_mut()
            .append_pair("voice", req.voice)
            .append_pair("language", "auto")
            .append_pair("codec", "pcm")
            .append_pair("sample_rate", &req.sample_rate.to_string())
            .append_pair("with_timestamps", "true");
        let headers = wsclient::headers([("authorization", wsclient::secret_header("Bearer ", req.key)?)]);
        let ws = wsclient::open(&url, headers, socket::CONNECT_TIMEOUT).await.map_err(refused)?;
        Ok(pump::spawn(ws, dialect::Utterances::new(req.sample_rate)))
    }
}

/// The fields of `GET /v1/api-key` that make a valid key unusable.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct KeyInfo {
    api_key_blocked: bool,
    api_key_disabled: bool,
    team_blocked: bool,
}

/// xAI answers a bad key with 400 "Incorrect API key provided" rather than 401.
fn refused(e: OpenError) -> TtsError {
    match &e {
        OpenError::Refused { status: 400, body: Some(body) }
            if String::from_utf8_lossy(body).to_ascii_lowercase().contains("api key") =>
        {
            TtsError::Unauthorized
        }
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_map_schemes() {
        let base = Url::parse("wss://api.x.ai").unwrap();
        let endpoint = |base: &Url, path: &[&str], ws| {
            wsclient::endpoint(base, if ws { wsclient::Scheme::Ws } else { wsclient::Scheme::Http }, path)
        };
        assert_eq!(endpoint(&base, &["v1", "tts"], true).unwrap().as_str(), "wss://api.x.ai/v1/tts");
        assert_eq!(endpoint(&base, &["v1", "api-key"], false).unwrap().as_str(), "https://api.x.ai/v1/api-key");
        let sim = Url::parse("ws://127.0.0.1:9/").unwrap();
        assert_eq!(endpoint(&sim, &["v1", "api-key"], false).unwrap().as_str(), "http://127.0.0.1:9/v1/api-key");
        assert!(endpoint(&Url::parse("ftp://x").unwrap(), &["v1"], true).is_err());
    }

    #[test]
    fn bad_keys_refused_with_400_are_unauthorized() {
        let refusal = |status, body: &[u8]| refused(OpenError::Refused { status, body: Some(body.to_vec()) });
        assert_eq!(refusal(400, b"Incorrect API key provided"), TtsError::Unauthorized);
        assert_eq!(refusal(400, b"bad voice"), TtsError::Connect("HTTP 400".into()));
        assert_eq!(refusal(403, b""), TtsError::Unauthorized);
    }
}
