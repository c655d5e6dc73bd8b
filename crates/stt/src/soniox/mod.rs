//! Soniox real-time adapter (`/transcribe-websocket`, protocols/stt.md B6).
//!
//! The key goes both in `Authorization: Bearer` (the new handshake auth) and in the config's
//! `api_key` (deprecated, accepted until 2027-01-15). Soniox never acknowledges the config and
//! reports a refused key in-band (`error_code` 401, then close), so `connect` sends one
//! `finalize` right after the config and waits for its `<fin>` (or the error), bounded by
//! `auth_wait`. Final tokens are gathered until the `<end>` endpoint token (→ final with
//! `speech_final`) or `<fin>` (→ final). Usage is `total_audio_proc_ms` of the `finished`
//! response.

use crate::wspump::{self, Dialect, Flow};
use crate::{Stt, SttError, SttEvent, SttRequest, SttStream};
use futures::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use url::Url;

const FINALIZE: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"finalize"}"#);
const KEEPALIVE: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"keepalive"}"#);
/// An empty text frame ends the audio.
const END_OF_AUDIO: Utf8Bytes = Utf8Bytes::from_static("");
const END_TOKEN: &str = "<end>";
const FIN_TOKEN: &str = "<fin>";

/// Streams linear16 audio to Soniox. Holds no key: each call brings its own.
#[derive(Debug, Clone)]
pub struct Soniox {
    connect_timeout: Duration,
    auth_wait: Duration,
    keepalive_after: Duration,
    close_wait: Duration,
    max_endpoint_delay_ms: u32,
}

impl Default for Soniox {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            auth_wait: Duration::from_secs(1),
            // Soniox wants a keepalive at least every 20 s when no audio flows.
            keepalive_after: Duration::from_secs(5),
            close_wait: Duration::from_secs(3),
            max_endpoint_delay_ms: 1000,
        }
    }
}

impl Soniox {
    pub fn new() -> Self {
        Self::default()
    }

    /// How long `connect` waits for Soniox to accept or refuse the key after the config.
    pub fn with_auth_wait(mut self, wait: Duration) -> Self {
        self.auth_wait = wait;
        self
    }

    /// The start request. It carries the key, so it is built, sent and dropped, never logged.
    fn config(&self, req: &SttRequest<'_>) -> String {
        let lang = req.language.split(['-', '_']).next().unwrap_or(req.language);
        serde_json::json!({
            "api_key": req.key.expose_secret(),
            "model": req.model,
            "audio_format": "pcm_s16le",
            "sample_rate": req.sample_rate,
            "num_channels": 1,
            "language_hints": if lang.is_empty() { Vec::new() } else { vec![lang] },
            "enable_endpoint_detection": true,
            "max_endpoint_delay_ms": self.max_endpoint_delay_ms,
        })
        .to_string()
    }
}

#[async_trait::async_trait]
impl Stt for Soniox {
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        crate::check_by_connecting(self, base_url, key, "stt-rt-v5").await
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        req.require_rate()?;
        let url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["transcribe-websocket"])?;
        let headers = wsclient::headers([("authorization", wsclient::secret_header("Bearer ", req.key)?)]);
        let mut ws = wsclient::open(&url, headers, self.connect_timeout).await?;
        let sent = async {
            ws.send(Message::text(self.config(&req))).await?;
            ws.send(Message::Text(FINALIZE)).await
        };
        sent.await.map_err(|e| SttError::Connect(e.to_string()))?;
        match tokio::time::timeout(self.auth_wait, first_answer(&mut ws)).await {
            Ok(r) => r?,
            Err(_) => tracing::debug!("soniox: no answer to the config yet; assuming the key was accepted"),
        }
        let opts = wspump::Opts {
            sample_rate: req.sample_rate,
            keepalive_after: self.keepalive_after,
            close_wait: self.close_wait,
        };
        Ok(wspump::spawn(ws, Wire::default(), opts))
    }
}

/// The answer to the config + probe: tokens (the `<fin>`) mean the key was taken.
async fn first_answer(ws: &mut wsclient::Ws) -> Result<(), SttError> {
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| SttError::Connect(e.to_string()))? {
            Message::Text(text) => {
                let resp: Response = parse(&text)?;
                return resp.error().map_or(Ok(()), Err);
            }
            Message::Close(Some(frame)) => return Err(wspump::close_error(&frame)),
            Message::Close(None) => break,
            _ => {}
        }
    }
    Err(SttError::Closed { code: 1006, reason: "closed before accepting the config".into() })
}

/// One server response (only the fields we use).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Response {
    tokens: Vec<Token>,
    total_audio_proc_ms: Option<u64>,
    finished: bool,
    error_code: Option<u16>,
    error_message: Option<String>,
}

impl Response {
    fn error(&self) -> Option<SttError> {
        if self.error_code.is_none() && self.error_message.is_none() {
            return None;
        }
        let message = self.error_message.clone().unwrap_or_default();
        Some(match self.error_code {
            Some(401 | 403) => SttError::Unauthorized,
            Some(429) => SttError::RateLimited,
            code => SttError::Closed { code: code.unwrap_or(0), reason: message },
        })
    }
}

#[derive(Debug, Deserialize)]
struct Token {
    text: String,
    #[serde(default)]
    start_ms: Option<f64>,
    #[serde(default)]
    end_ms: Option<f64>,
    #[serde(default)]
    is_final: bool,
}

fn parse(text: &str) -> Result<Response, SttError> {
    serde_json::from_str(text).map_err(|e| SttError::Protocol(format!("undecodable Soniox message: {e}")))
}

/// Final tokens since the last emitted final, and the span they cover.
#[derive(Default)]
pub(crate) struct Wire {
    final_text: String,
    start_ms: Option<f64>,
    end_ms: f64,
}

impl Wire {
    fn emit_final(&mut self, speech_final: bool, events: &mut Vec<SttEvent>) {
        let text = self.final_text.trim();
        if !text.is_empty() || speech_final {
            let start_s = self.start_ms.unwrap_or(self.end_ms) / 1000.0;
            events.push(SttEvent::Final { text: text.to_string(), start_s, end_s: self.end_ms / 1000.0, speech_final });
        }
        self.final_text.clear();
        self.start_ms = None;
    }

    fn note_span(&mut self, t: &Token, events: &mut Vec<SttEvent>) {
        if self.start_ms.is_none() {
            let start = t.start_ms.unwrap_or(self.end_ms);
            self.start_ms = Some(start);
            events.push(SttEvent::SpeechStarted { at_s: start / 1000.0 });
        }
        if t.is_final {
            self.end_ms = t.end_ms.unwrap_or(self.end_ms).max(self.end_ms);
        }
    }
}

impl Dialect for Wire {
    const NAME: &'static str = "soniox";

    fn finalize(&mut self, out: &mut Vec<Message>) {
        out.push(Message::Text(FINALIZE));
    }

    fn keepalive(&mut self, out: &mut Vec<Message>) {
        out.push(Message::Text(KEEPALIVE));
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Flow {
        out.push(Message::Text(END_OF_AUDIO));
        Flow::Continue
    }

    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>, _out: &mut Vec<Message>) -> Result<Flow, SttError> {
        let resp = parse(text)?;
        if let Some(e) = resp.error() {
            self.emit_final(false, events);
            return Err(e);
        }
        let mut tail = String::new();
        let mut heard = false;
        for t in &resp.tokens {
            match (t.is_final, t.text.as_str()) {
                (true, END_TOKEN) => self.emit_final(true, events),
                (true, FIN_TOKEN) => self.emit_final(false, events),
                (_, END_TOKEN | FIN_TOKEN) => {}
                (true, piece) => {
                    self.note_span(t, events);
                    self.final_text.push_str(piece);
                    heard = true;
                }
                (false, piece) => {
                    self.note_span(t, events);
                    tail.push_str(piece);
                    heard = true;
                }
            }
        }
        if heard && (!self.final_text.is_empty() || !tail.is_empty()) {
            let text = format!("{}{}", self.final_text, tail).trim().to_string();
            if !text.is_empty() {
                let start_s = self.start_ms.unwrap_or(self.end_ms) / 1000.0;
                let end_s = resp.tokens.last().and_then(|t| t.end_ms).map_or(self.end_ms, |e| e.max(self.end_ms));
                events.push(SttEvent::Interim { text, start_s, end_s: end_s / 1000.0 });
            }
        }
        if resp.finished {
            self.emit_final(false, events);
            let audio_ms = resp.total_audio_proc_ms.unwrap_or_default();
            events.push(SttEvent::Usage { audio_ms, estimated: false });
            return Ok(Flow::Finished);
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(text: &str, s: u32, e: u32, fin: bool) -> String {
        format!(r#"{{"text":"{text}","start_ms":{s},"end_ms":{e},"confidence":0.9,"is_final":{fin}}}"#)
    }

    #[test]
    fn tokens_become_interims_then_a_final_at_the_endpoint() {
        let mut w = Wire::default();
        let mut ev = Vec::new();
        let r1 = format!(
            r#"{{"tokens":[{},{}],"final_audio_proc_ms":0,"total_audio_proc_ms":900}}"#,
            tok("Hel", 600, 700, true),
            tok("lo", 700, 800, false)
        );
        assert_eq!(w.decode(&r1, &mut ev, &mut Vec::new()).unwrap(), Flow::Continue);
        let r2 = format!(
            r#"{{"tokens":[{},{},{}],"final_audio_proc_ms":1200,"total_audio_proc_ms":1300}}"#,
            tok("lo", 700, 800, true),
            tok(" there.", 800, 1100, true),
            tok("<end>", 1100, 1100, true)
        );
        w.decode(&r2, &mut ev, &mut Vec::new()).unwrap();
        let end = r#"{"tokens":[],"final_audio_proc_ms":1300,"total_audio_proc_ms":1320,"finished":true}"#;
        assert_eq!(w.decode(end, &mut ev, &mut Vec::new()).unwrap(), Flow::Finished);
        assert_eq!(
            ev,
            [
                SttEvent::SpeechStarted { at_s: 0.6 },
                SttEvent::Interim { text: "Hello".into(), start_s: 0.6, end_s: 0.8 },
                SttEvent::Final { text: "Hello there.".into(), start_s: 0.6, end_s: 1.1, speech_final: true },
                SttEvent::Usage { audio_ms: 1320, estimated: false },
            ]
        );
    }

    #[test]
    fn fin_flushes_without_speech_final_and_errors_map() {
        let mut w = Wire::default();
        let mut ev = Vec::new();
        let r = format!(r#"{{"tokens":[{},{}]}}"#, tok("Hi", 0, 200, true), tok("<fin>", 200, 200, true));
        w.decode(&r, &mut ev, &mut Vec::new()).unwrap();
        assert!(matches!(ev.last(), Some(SttEvent::Final { text, speech_final: false, .. }) if text == "Hi"));
        ev.clear();
        w.decode(r#"{"tokens":[{"text":"<fin>","is_final":true}]}"#, &mut ev, &mut Vec::new()).unwrap();
        assert!(ev.is_empty(), "an empty <fin> (the connect probe) reports nothing");
        let bad = r#"{"tokens":[],"error_code":401,"error_type":"unauthenticated","error_message":"Invalid API key."}"#;
        assert_eq!(w.decode(bad, &mut ev, &mut Vec::new()), Err(SttError::Unauthorized));
        let gone = r#"{"tokens":[],"error_code":503,"error_message":"Cannot continue request (code 1)."}"#;
        assert!(matches!(w.decode(gone, &mut ev, &mut Vec::new()), Err(SttError::Closed { code: 503, .. })));
    }

    #[test]
    fn config_carries_the_session_settings() {
        let req = SttRequest::for_test("wss://stt-rt.soniox.com", "stt-rt-v5", 8000, "en-US");
        let v: serde_json::Value = serde_json::from_str(&Soniox::new().config(&req)).unwrap();
        assert_eq!(v["model"], "stt-rt-v5");
        assert_eq!((v["sample_rate"].as_u64(), v["num_channels"].as_u64()), (Some(8000), Some(1)));
        assert_eq!(v["language_hints"], serde_json::json!(["en"]));
        assert_eq!(v["enable_endpoint_detection"], true);
    }
}
