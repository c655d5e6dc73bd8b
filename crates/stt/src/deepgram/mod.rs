//! Deepgram live streaming v1 adapter (`/v1/listen`, protocols/stt.md B1); `flux-…` models go
//! to the Flux v2 adapter in [`flux`].

pub(crate) mod flux;
pub(crate) mod wire;

use crate::wspump;
use crate::{Stt, SttError, SttRequest, SttStream};
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

/// Streams linear16 audio to Deepgram and maps its results. Holds no key: each call brings its own.
#[derive(Debug, Clone)]
pub struct Deepgram {
    connect_timeout: Duration,
    keepalive_after: Duration,
    close_wait: Duration,
    endpointing_ms: u32,
    utterance_end_ms: u32,
}

impl Default for Deepgram {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            // Deepgram closes after 10 s without audio or KeepAlive; its docs ask for 3–5 s.
            keepalive_after: Duration::from_secs(4),
            close_wait: Duration::from_secs(3),
            endpointing_ms: Self::DEFAULT_ENDPOINTING_MS,
            utterance_end_ms: 1000,
        }
    }
}

impl Deepgram {
    /// The silence that ends an utterance unless [`Self::with_endpointing_ms`] says otherwise;
    /// part of every answer's wait (`switchboard bench` counts it in its latency floor).
    pub const DEFAULT_ENDPOINTING_MS: u32 = 300;

    pub fn new() -> Self {
        Self::default()
    }

    /// Idle time (no audio) before the adapter sends `KeepAlive` itself.
    pub fn with_keepalive_after(mut self, idle: Duration) -> Self {
        self.keepalive_after = idle;
        self
    }

    /// Silence (ms) after which Deepgram marks `speech_final`; the turn detector builds on it.
    pub fn with_endpointing_ms(mut self, ms: u32) -> Self {
        self.endpointing_ms = ms;
        self
    }

    fn listen_url(&self, req: &SttRequest<'_>) -> Result<Url, SttError> {
        let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["v1", "listen"])?;
        url.query_pairs_mut()
            .append_pair("model", req.model)
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &req.sample_rate.to_string())
            .append_pair("channels", "1")
            .append_pair("language", req.language)
            .append_pair("interim_results", "true")
            .append_pair("endpointing", &self.endpointing_ms.to_string())
            .append_pair("utterance_end_ms", &self.utterance_end_ms.to_string())
            .append_pair("vad_events", "true")
            .append_pair("punctuate", "true");
        Ok(url)
    }
}

#[async_trait::async_trait]
impl Stt for Deepgram {
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        crate::check_by_connecting(self, base_url, key, "nova-3").await
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        if flux::is_flux(req.model) {
            return flux::connect(self, &req).await;
        }
        req.require_rate()?;
        let url = self.listen_url(&req)?;
        let ws = open(&url, &req, self.connect_timeout).await?;
        let opts = wspump::Opts {
            sample_rate: req.sample_rate,
            keepalive_after: self.keepalive_after,
            close_wait: self.close_wait,
        };
        Ok(wspump::spawn(ws, wire::Listen, opts))
    }
}

/// v1 and Flux share the key header: `Authorization: Token {key}`.
async fn open(url: &Url, req: &SttRequest<'_>, timeout: Duration) -> Result<wsclient::Ws, SttError> {
    let headers = wsclient::headers([("authorization", wsclient::secret_header("Token ", req.key)?)]);
    Ok(wsclient::open(url, headers, timeout).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(base: &str) -> SttRequest<'static> {
        SttRequest::for_test(base, "nova-3", 16000, "en-US")
    }

    #[test]
    fn url_maps_scheme_and_sets_query() {
        let url = Deepgram::new().listen_url(&req("https://api.deepgram.com")).unwrap();
        assert_eq!(
            url.as_str(),
            "wss://api.deepgram.com/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&channels=1&language=en-US&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true&punctuate=true"
        );
        let url = Deepgram::new().listen_url(&req("ws://127.0.0.1:1234/")).unwrap();
        assert!(url.as_str().starts_with("ws://127.0.0.1:1234/v1/listen?model=nova-3&"));
        assert!(matches!(Deepgram::new().listen_url(&req("ftp://x")), Err(SttError::Connect(_))));
    }
}
