//! AssemblyAI Universal Streaming v3 adapter (`/v3/ws`, protocols/stt.md B3).
//!
//! The key goes raw in `Authorization`; a refused key is not an HTTP error but a close (1008
//! "Unauthorized connection: …") right after the upgrade, so `connect` waits for `Begin`.
//! Each audio message must hold 50–1000 ms, so 20 ms frames are gathered before sending.
//! Turns are cumulative; with `format_turns=true` a turn ends with an unformatted then a
//! formatted `end_of_turn` message, and only the formatted one becomes the final.
//! Usage is `Termination.audio_duration_seconds`, the provider's own figure.

use crate::wspump::{self, Dialect, Flow};
use crate::{Stt, SttError, SttEvent, SttRequest, SttStream};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use secrecy::SecretString;
use serde::Deserialize;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use url::Url;

const FORCE_ENDPOINT: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"ForceEndpoint"}"#);
const KEEP_ALIVE: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"KeepAlive"}"#);
const TERMINATE: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"Terminate"}"#);
/// The provider's bounds on one audio message (close 3007 outside them).
const MIN_CHUNK_MS: u64 = 50;
const MAX_CHUNK_MS: u64 = 1000;

/// Streams linear16 audio to AssemblyAI. Holds no key: each call brings its own.
#[derive(Debug, Clone)]
pub struct AssemblyAi {
    connect_timeout: Duration,
    keepalive_after: Duration,
    close_wait: Duration,
    /// Audio gathered per message (50–1000 ms).
    chunk_ms: u64,
}

impl Default for AssemblyAi {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            keepalive_after: Duration::from_secs(4),
            close_wait: Duration::from_secs(3),
            chunk_ms: MIN_CHUNK_MS,
        }
    }
}

impl AssemblyAi {
    pub fn new() -> Self {
        Self::default()
    }

    fn ws_url(&self, req: &SttRequest<'_>) -> Result<Url, SttError> {
        let mut url = wsclient::endpoint(req.base_url, wsclient::Scheme::Ws, &["v3", "ws"])?;
        url.query_pairs_mut()
            .append_pair("sample_rate", &req.sample_rate.to_string())
            .append_pair("encoding", "pcm_s16le")
            .append_pair("speech_model", req.model)
            .append_pair("format_turns", "true");
        Ok(url)
    }
}

#[async_trait::async_trait]
impl Stt for AssemblyAi {
    async fn check_key(&self, base_url: &Url, key: &SecretString) -> Result<(), SttError> {
        crate::check_by_connecting(self, base_url, key, "universal-streaming-english").await
    }

    async fn connect(&self, req: SttRequest<'_>) -> Result<SttStream, SttError> {
        req.require_rate()?;
        let url = self.ws_url(&req)?;
        let started = tokio::time::Instant::now();
        let headers = wsclient::headers([("authorization", wsclient::secret_header("", req.key)?)]);
        let mut ws = wsclient::open(&url, headers, self.connect_timeout).await?;
        let left = self.connect_timeout.saturating_sub(started.elapsed());
        tokio::time::timeout(left, wait_for_begin(&mut ws)).await.map_err(|_| SttError::Timeout)??;
        let bytes_per_ms = u64::from(req.sample_rate) * 2 / 1000;
        let dialect = Wire {
            buf: BytesMut::with_capacity((bytes_per_ms * self.chunk_ms * 2) as usize),
            min_bytes: (bytes_per_ms * self.chunk_ms).max(2) as usize,
            max_bytes: (bytes_per_ms * MAX_CHUNK_MS).max(2) as usize,
            turn: None,
        };
        let opts = wspump::Opts {
            sample_rate: req.sample_rate,
            keepalive_after: self.keepalive_after,
            close_wait: self.close_wait,
        };
        Ok(wspump::spawn(ws, dialect, opts))
    }
}

/// The session is live once `Begin` arrives; a refused key closes the socket instead.
async fn wait_for_begin(ws: &mut wsclient::Ws) -> Result<(), SttError> {
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| SttError::Connect(e.to_string()))? {
            Message::Text(text) => {
                let mut events = Vec::new();
                return match decode(&text, &mut events, &mut None)? {
                    Decoded::Begin => Ok(()),
                    _ => Err(SttError::Protocol("AssemblyAI sent a message before Begin".into())),
                };
            }
            Message::Close(Some(frame)) => return Err(wspump::close_error(&frame)),
            Message::Close(None) => break,
            _ => {}
        }
    }
    Err(SttError::Closed { code: 1006, reason: "closed before Begin".into() })
}

/// Socket-side state: the audio being gathered and the turn in progress.
pub(crate) struct Wire {
    pub(crate) buf: BytesMut,
    pub(crate) min_bytes: usize,
    pub(crate) max_bytes: usize,
    /// `turn_order` of the turn whose start was already reported.
    pub(crate) turn: Option<u64>,
}

impl Wire {
    /// Send whatever audio is gathered, padded with silence up to the 50 ms minimum.
    fn flush_audio(&mut self, out: &mut Vec<Message>) {
        if !self.buf.is_empty() {
            if self.buf.len() < self.min_bytes {
                self.buf.resize(self.min_bytes, 0);
            }
            out.push(Message::Binary(self.buf.split().freeze()));
        }
    }
}

impl Dialect for Wire {
    const NAME: &'static str = "assemblyai";

    fn audio(&mut self, pcm: Bytes, out: &mut Vec<Message>) -> Result<(), SttError> {
        self.buf.extend_from_slice(&pcm);
        while self.buf.len() >= self.max_bytes {
            out.push(Message::Binary(self.buf.split_to(self.max_bytes).freeze()));
        }
        if self.buf.len() >= self.min_bytes {
            out.push(Message::Binary(self.buf.split().freeze()));
        }
        Ok(())
    }

    fn finalize(&mut self, out: &mut Vec<Message>) {
        self.flush_audio(out);
        out.push(Message::Text(FORCE_ENDPOINT));
    }

    fn keepalive(&mut self, out: &mut Vec<Message>) {
        out.push(Message::Text(KEEP_ALIVE));
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Flow {
        self.flush_audio(out);
        out.push(Message::Text(TERMINATE));
        Flow::Continue
    }

    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>, _out: &mut Vec<Message>) -> Result<Flow, SttError> {
        Ok(match decode(text, events, &mut self.turn)? {
            Decoded::Termination => Flow::Finished,
            Decoded::Begin | Decoded::Other => Flow::Continue,
        })
    }
}

/// Server → client text frames (only the fields we use).
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum ServerMsg {
    Begin,
    SpeechStarted {
        #[serde(default)]
        timestamp: f64,
    },
    Turn(Turn),
    Termination {
        #[serde(default)]
        audio_duration_seconds: f64,
    },
    Error {
        #[serde(default)]
        error_code: Option<u16>,
        #[serde(default)]
        error: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Turn {
    turn_order: u64,
    #[serde(default)]
    turn_is_formatted: bool,
    #[serde(default)]
    end_of_turn: bool,
    #[serde(default)]
    transcript: String,
    #[serde(default)]
    words: Vec<Word>,
}

#[derive(Debug, Deserialize)]
struct Word {
    /// Milliseconds from stream start.
    start: f64,
    end: f64,
    text: String,
}

#[derive(Debug, PartialEq)]
enum Decoded {
    Begin,
    Termination,
    Other,
}

/// One text frame into events. `turn` remembers which turn's start was already reported, so
/// the first message of each turn also yields `SpeechStarted` (universal-streaming models send
/// no VAD event of their own).
fn decode(text: &str, events: &mut Vec<SttEvent>, turn: &mut Option<u64>) -> Result<Decoded, SttError> {
    let msg: ServerMsg =
        serde_json::from_str(text).map_err(|e| SttError::Protocol(format!("undecodable AssemblyAI message: {e}")))?;
    match msg {
        ServerMsg::Begin => return Ok(Decoded::Begin),
        ServerMsg::SpeechStarted { timestamp } => events.push(SttEvent::SpeechStarted { at_s: timestamp / 1000.0 }),
        ServerMsg::Turn(t) => turn_events(t, events, turn),
        ServerMsg::Termination { audio_duration_seconds } => {
            let audio_ms = wspump::seconds_to_ms(audio_duration_seconds);
            events.push(SttEvent::Usage { audio_ms, estimated: false });
            return Ok(Decoded::Termination);
        }
        ServerMsg::Error { error_code, error } => {
            return Err(SttError::Closed { code: error_code.unwrap_or(1011), reason: error });
        }
        ServerMsg::Other => {}
    }
    Ok(Decoded::Other)
}

fn turn_events(t: Turn, events: &mut Vec<SttEvent>, turn: &mut Option<u64>) {
    let start_s = t.words.first().map_or(0.0, |w| w.start / 1000.0);
    let end_s = t.words.last().map_or(start_s, |w| w.end / 1000.0);
    if *turn != Some(t.turn_order) && !t.words.is_empty() {
        *turn = Some(t.turn_order);
        events.push(SttEvent::SpeechStarted { at_s: start_s });
    }
    if t.end_of_turn && t.turn_is_formatted {
        events.push(SttEvent::Final { text: t.transcript, start_s, end_s, speech_final: true });
        return;
    }
    // Partials: `transcript` holds only finalized words; the words list also has the tail.
    let text = if t.end_of_turn || t.words.is_empty() {
        t.transcript
    } else {
        t.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
    };
    if !text.is_empty() {
        events.push(SttEvent::Interim { text, start_s, end_s });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_carries_model_and_format() {
        let req = SttRequest::for_test("wss://streaming.assemblyai.com", "universal-streaming-english", 16000, "en");
        assert_eq!(
            AssemblyAi::new().ws_url(&req).unwrap().as_str(),
            "wss://streaming.assemblyai.com/v3/ws?sample_rate=16000&encoding=pcm_s16le&speech_model=universal-streaming-english&format_turns=true"
        );
    }

    #[test]
    fn turns_map_to_interims_and_one_formatted_final() {
        let mut turn = None;
        let mut ev = Vec::new();
        let partial = r#"{"type":"Turn","turn_order":0,"turn_is_formatted":false,"end_of_turn":false,
            "transcript":"hi","end_of_turn_confidence":0.01,"utterance":"",
            "words":[{"start":500,"end":700,"text":"hi","confidence":0.9,"word_is_final":true},
                     {"start":700,"end":900,"text":"my","confidence":0.8,"word_is_final":false}]}"#;
        assert_eq!(decode(partial, &mut ev, &mut turn).unwrap(), Decoded::Other);
        let eot = partial
            .replace(r#""end_of_turn":false"#, r#""end_of_turn":true"#)
            .replace(r#""hi","end"#, r#""hi my","end"#);
        decode(&eot, &mut ev, &mut turn).unwrap();
        let formatted = eot
            .replace(r#""turn_is_formatted":false"#, r#""turn_is_formatted":true"#)
            .replace(r#""hi my","end"#, r#""Hi, my.","end"#);
        decode(&formatted, &mut ev, &mut turn).unwrap();
        assert_eq!(
            ev,
            [
                SttEvent::SpeechStarted { at_s: 0.5 },
                SttEvent::Interim { text: "hi my".into(), start_s: 0.5, end_s: 0.9 },
                SttEvent::Interim { text: "hi my".into(), start_s: 0.5, end_s: 0.9 },
                SttEvent::Final { text: "Hi, my.".into(), start_s: 0.5, end_s: 0.9, speech_final: true },
            ]
        );
        ev.clear();
        let term = r#"{"type":"Termination","audio_duration_seconds":12,"session_duration_seconds":13}"#;
        assert_eq!(decode(term, &mut ev, &mut turn).unwrap(), Decoded::Termination);
        assert_eq!(ev, [SttEvent::Usage { audio_ms: 12_000, estimated: false }]);
        let err = r#"{"type":"Error","error_code":3008,"error":"Session Expired"}"#;
        assert_eq!(
            decode(err, &mut ev, &mut turn),
            Err(SttError::Closed { code: 3008, reason: "Session Expired".into() })
        );
    }

    #[test]
    fn audio_is_gathered_into_50ms_messages() {
        let mut w = Wire { buf: BytesMut::new(), min_bytes: 1600, max_bytes: 32000, turn: None };
        let mut out = Vec::new();
        for _ in 0..4 {
            w.audio(Bytes::from(vec![1u8; 640]), &mut out).unwrap(); // 20 ms at 16 kHz
        }
        let sizes: Vec<usize> = out.iter().map(Message::len).collect();
        assert_eq!(sizes, [1920]);
        out.clear();
        w.close(&mut out);
        assert_eq!(out.first().map(Message::len), Some(1600), "640 bytes left, padded to 50 ms");
        assert_eq!(out.get(1), Some(&Message::Text(TERMINATE)));
    }
}
