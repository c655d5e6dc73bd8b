//! Deepgram live v1 messages as the adapter sees them (protocols/stt.md B1), and its
//! [`Dialect`]: binary audio up, `KeepAlive`/`Finalize`/`CloseStream` as JSON, results down.
//! Only the fields we use are decoded; everything else in the provider's JSON is ignored.

use crate::wspump::{plain_closed, seconds_to_ms, Dialect, Flow};
use crate::{SttError, SttEvent};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::{protocol::CloseFrame, Message, Utf8Bytes};

pub(crate) const KEEP_ALIVE: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"KeepAlive"}"#);
pub(crate) const FINALIZE: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"Finalize"}"#);
pub(crate) const CLOSE_STREAM: Utf8Bytes = Utf8Bytes::from_static(r#"{"type":"CloseStream"}"#);

/// The v1 socket: usage is `Metadata.duration` after `CloseStream`, else counted from the audio
/// sent; a close is an error only when its code says so.
pub(crate) struct Listen;

impl Dialect for Listen {
    const NAME: &'static str = "deepgram";
    const FINALIZE_RESTARTS_KEEPALIVE: bool = false;

    fn finalize(&mut self, out: &mut Vec<Message>) {
        out.push(Message::Text(FINALIZE));
    }

    fn keepalive(&mut self, out: &mut Vec<Message>) {
        out.push(Message::Text(KEEP_ALIVE));
    }

    fn close(&mut self, out: &mut Vec<Message>) -> Flow {
        out.push(Message::Text(CLOSE_STREAM));
        Flow::Continue
    }

    fn decode(&mut self, text: &str, events: &mut Vec<SttEvent>, _out: &mut Vec<Message>) -> Result<Flow, SttError> {
        events.extend(decode(text)?);
        Ok(Flow::Continue)
    }

    fn closed(frame: Option<&CloseFrame>, _closing: bool) -> Result<(), SttError> {
        plain_closed(frame)
    }
}

/// Server → client text frames, discriminated by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum ServerMsg {
    Results(Results),
    SpeechStarted {
        timestamp: f64,
    },
    UtteranceEnd {
        last_word_end: f64,
    },
    Metadata {
        duration: f64,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Results {
    start: f64,
    duration: f64,
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    channel: Channel,
}

#[derive(Debug, Deserialize)]
struct Channel {
    alternatives: Vec<Alternative>,
}

#[derive(Debug, Deserialize)]
struct Alternative {
    transcript: String,
}

/// Just the discriminator, to name an unknown message in a debug log.
#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// Decode one text frame into at most one event. `Ok(None)` for messages with nothing to report
/// (unknown types, empty interim hypotheses, empty non-endpoint finals).
pub(crate) fn decode(text: &str) -> Result<Option<SttEvent>, SttError> {
    let msg: ServerMsg =
        serde_json::from_str(text).map_err(|e| SttError::Protocol(format!("undecodable Deepgram message: {e}")))?;
    Ok(match msg {
        ServerMsg::Results(r) => {
            let text = r.channel.alternatives.into_iter().next().map(|a| a.transcript).unwrap_or_default();
            let (start_s, end_s) = (r.start, r.start + r.duration);
            if !r.is_final {
                (!text.is_empty()).then_some(SttEvent::Interim { text, start_s, end_s })
            } else if text.is_empty() && !r.speech_final {
                None
            } else {
                Some(SttEvent::Final { text, start_s, end_s, speech_final: r.speech_final })
            }
        }
        ServerMsg::SpeechStarted { timestamp } => Some(SttEvent::SpeechStarted { at_s: timestamp }),
        ServerMsg::UtteranceEnd { last_word_end } => Some(SttEvent::UtteranceEnd { last_word_end_s: last_word_end }),
        ServerMsg::Metadata { duration } => {
            Some(SttEvent::Usage { audio_ms: seconds_to_ms(duration), estimated: false })
        }
        ServerMsg::Other => {
            let kind = serde_json::from_str::<TypeOnly>(text).ok().and_then(|t| t.kind);
            tracing::debug!(kind = ?kind.as_deref().unwrap_or("?"), "deepgram: ignoring message");
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_map_to_interim_and_final() {
        let interim = r#"{"type":"Results","channel_index":[0,1],"duration":1.0,"start":2.5,"is_final":false,
            "channel":{"alternatives":[{"transcript":"hello","confidence":0.9,"words":[]}]},"metadata":{}}"#;
        assert_eq!(
            decode(interim).unwrap(),
            Some(SttEvent::Interim { text: "hello".into(), start_s: 2.5, end_s: 3.5 })
        );
        let fin = interim.replace(r#""is_final":false"#, r#""is_final":true,"speech_final":true"#);
        assert_eq!(
            decode(&fin).unwrap(),
            Some(SttEvent::Final { text: "hello".into(), start_s: 2.5, end_s: 3.5, speech_final: true })
        );
    }

    #[test]
    fn empty_finals_only_count_when_they_end_speech() {
        let empty = r#"{"type":"Results","duration":0.5,"start":0,"is_final":true,"speech_final":false,
            "channel":{"alternatives":[{"transcript":""}]}}"#;
        assert_eq!(decode(empty).unwrap(), None);
        let endpoint = empty.replace(r#""speech_final":false"#, r#""speech_final":true"#);
        assert!(matches!(
            decode(&endpoint).unwrap(),
            Some(SttEvent::Final { speech_final: true, ref text, .. }) if text.is_empty()
        ));
    }

    #[test]
    fn metadata_events_and_unknowns() {
        let meta = r#"{"type":"Metadata","transaction_key":"deprecated","request_id":"x","sha256":"y",
            "created":"2024-08-29T22:37:55.202Z","duration":12.4805,"channels":1}"#;
        assert_eq!(decode(meta).unwrap(), Some(SttEvent::Usage { audio_ms: 12481, estimated: false }));
        assert_eq!(
            decode(r#"{"type":"SpeechStarted","channel":[0,1],"timestamp":3.42}"#).unwrap(),
            Some(SttEvent::SpeechStarted { at_s: 3.42 })
        );
        assert_eq!(
            decode(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":4.3}"#).unwrap(),
            Some(SttEvent::UtteranceEnd { last_word_end_s: 4.3 })
        );
        assert_eq!(decode(r#"{"type":"Warning","description":"x"}"#).unwrap(), None);
        assert!(matches!(decode("not json"), Err(SttError::Protocol(_))));
        assert!(matches!(decode(r#"{"type":"Results","start":0}"#), Err(SttError::Protocol(_))));
    }
}
