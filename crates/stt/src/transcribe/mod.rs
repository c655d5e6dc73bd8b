//! Amazon Transcribe streaming over WebSocket (protocols/aws-azure.md A2.1).
//!
//! The key is `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`; the region comes from the
//! base URL host (`transcribestreaming.{region}.amazonaws.com`), or for a simulator URL from
//! its `?region=` parameter, else `us-east-1`. The URL is SigV4-presigned (service
//! `transcribe`, valid 300 s), audio goes out as event-stream `AudioEvent` frames and
//! `TranscriptEvent`s come back (`IsPartial` → interim, otherwise final). Transcribe reports no
//! duration, so usage is counted locally from the audio sent (`estimated`). The model name
//! (`standard`) only selects the rate-table row.

pub(crate) mod wire;

use crate::wspump;
use crate::{Stt, SttError, SttRequest, SttStream};
use aws::{AmzDate, Credentials, Signer};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use url::Url;
use wsclient::OpenError;

/// Longest validity AWS accepts for the presigned upgrade URL.
const PRESIGN_EXPIRES_S: u32 = 300;

/// Streams linear16 audio to Amazon Transcribe. Holds no key: each call brings its own.
#[derive(Debug, Clone)]
pub struct Transcribe {
    connect_timeout: Duration,
    keepalive_after: Duration,
    close_wait: Duration,
}

impl Default for Transcribe {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            // Transcribe ends a stream after 15 s without audio.
            keepalive_after: Duration::from_secs(5),
            // Under the session's 3 s wait for the closing usage event.
            close_wait: Duration::from_millis(2500),
        }
    }
}

impl Transcribe {
    pub fn new() -> Self {
        Self::default()
    }
}

fn credentials(key: &SecretString) -> Result<Credentials, SttError> {
    // A malformed key can never be accepted: the same answer as a refused one.
    Credentials::parse(key.expose_secret()).map_err(|_| SttError::Unauthorized)
}

/// The presigned `/stream-transcription-websocket` URL for `base`.
fn presigned_url(
    base: &Url,
    creds: Credentials,
    sample_rate: u32,
    language: &str,
    at: AmzDate,
) -> Result<Url, SttError> {
    let region = aws::region_from_url(base);
    let mut url = wsclient::endpoint(base, wsclient::Scheme::Ws, &["stream-transcription-websocket"])?;
    url.query_pairs_mut()
        .append_pair("language-code", &language_code(language))
        .append_pair("media-encoding", "pcm")
        .append_pair("sample-rate", &sample_rate.to_string());
    Ok(Signer::new(creds, region, "transcribe").presign("GET", &url, PRESIGN_EXPIRES_S, at))
}

/// Transcribe wants a full locale (`en-US`); a bare language takes its most common one.
fn language_code(tag: &str) -> String {
    let tag = tag.replace('_', "-");
    if tag.contains('-') {
        return tag;
    }
    let full = match tag.to_ascii_lowercase().as_str() {
        "" | "en" => "en-US",
        "es" => "es-US",
        "fr" => "fr-FR",
        "de" => "de-DE",
        "it" => "it-IT",
        "pt" => "pt-BR",
        "ja" => "ja-JP",
        "ko" => "ko-KR",
        "zh" => "zh-CN",
        "hi" => "hi-IN",
        "ar" => "ar-SA",
        "nl" => "nl-NL",
        _ => return tag,
    };
    full.to_string()
}

impl Transcribe {
    async fn open(
        &self,
        base: &Url,
        key: &SecretString,
        sample_rate: u32,
        language: &str,
    ) -> Result<wsclient::Ws, SttError> {
        if !(8000..=48000).contains(&sample_rate) {
            return Err(SttError::Connect(format!("Transcribe does not take {sample_rate} Hz PCM")));
        }
        let url = presigned_url(base, credentials(key)?, sample_rate, language, AmzDate::now())?;
        // The presigned URL carries a signature (and maybe a session token): never log it, and
        // keep tungstenite's texts, which may quote the URI, out of messages.
        wsclient::open(&url, wsclient::HeaderMap::new(), self.connect_timeout).await.map_err(|e| match e {
            OpenError::Request(_) | OpenError::Failed(_) => {
                SttError::Connect("WebSocket handshake with Transcribe failed".into())
            }
            other => other.into(),
        })
    }
}

#[async_trait::async_trait]
impl Stt for Transcribe {
    /// Opens the presigned socket and closes it without sending audio (no end-of-stream
    /// frame, so no transcription starts). A bad signature is refused at the upgrade (403);
    /// Transcribe may also refuse in-band with `UnrecognizedClientException`, so a short wait
    /// for such a frame precedes the close.
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        let mut ws = self.open(base_url, key, 16000, "en-US").await?;
        let mut out = Vec::new();
        let verdict = match tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
            Ok(Some(Ok(Message::Binary(frame)))) => wire::decode(&frame, &mut out),
            _ => Ok(()),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        verdict
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        let ws = self.open(req.base_url, req.key, req.sample_rate, req.language).await?;
        let opts = wspump::Opts {
            sample_rate: req.sample_rate,
            keepalive_after: self.keepalive_after,
            close_wait: self.close_wait,
        };
        Ok(wspump::spawn(ws, wire::Stream::new(req.sample_rate), opts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_url_matches_the_worked_example() {
        let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None);
        let base = Url::parse("wss://transcribestreaming.us-east-1.amazonaws.com:8443").unwrap();
        let at = AmzDate::parse("20150830T123600Z").unwrap();
        let url = presigned_url(&base, creds, 16000, "en", at).unwrap();
        assert!(url.as_str().starts_with(
            "wss://transcribestreaming.us-east-1.amazonaws.com:8443/stream-transcription-websocket?X-Amz-Algorithm="
        ));
        assert!(url
            .as_str()
            .ends_with("X-Amz-Signature=0db9203a3b2901dd66d2a9542671dc1760207b2de6fb4c8ff9eec222bd938539"));
    }

    #[test]
    fn simulator_region_and_language_fallbacks() {
        let creds = Credentials::new("AKID", "s", None);
        let base = Url::parse("http://127.0.0.1:9/?region=eu-west-1").unwrap();
        let url = presigned_url(&base, creds, 8000, "de", AmzDate::now()).unwrap();
        let q = url.query().unwrap();
        assert!(url.as_str().starts_with("ws://127.0.0.1:9/stream-transcription-websocket?"));
        assert!(
            q.contains("%2Feu-west-1%2Ftranscribe%2F") && q.contains("language-code=de-DE") && !q.contains("region=")
        );
        assert_eq!(language_code("en_GB"), "en-GB");
        assert_eq!(language_code("sv"), "sv");
    }
}
