//! Transcribe's event-stream messages (protocols/aws-azure.md A0, A2.1): `AudioEvent` frames
//! out, `TranscriptEvent` JSON and exception frames in, and the socket's [`Dialect`].

use crate::wspump::{pcm_ms, strict_closed, Dialect, Flow};
use crate::{SttError, SttEvent};
use aws::eventstream::{self, Header, Message};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::{protocol::CloseFrame, Message as WsMessage};

/// One Transcribe stream: audio framed as `AudioEvent`s, results in binary frames. Transcribe
/// has no keep-alive or flush message and reports no duration, so idle keep-alives are 20 ms of
/// silence and usage is the PCM sent, counted here (the frames carry event-stream headers).
pub(crate) struct Stream {
    enc: AudioEncoder,
    /// 20 ms of silence, sent when the caller goes quiet on the wire.
    silence: Vec<u8>,
    /// PCM bytes sent, silence included: billed per second of audio streamed.
    pcm_bytes: u64,
}

impl Stream {
    pub(super) fn new(sample_rate: u32) -> Self {
        let silence = vec![0u8; media::samples_per_20ms(sample_rate.max(50)) * 2];
        Self { enc: AudioEncoder::new(), silence, pcm_bytes: 0 }
    }
}

impl Dialect for Stream {
    const NAME: &'static str = "transcribe";

    fn audio(&mut self, pcm: Bytes, out: &mut Vec<WsMessage>) -> Result<(), SttError> {
        if pcm.is_empty() {
            return Ok(());
        }
        self.pcm_bytes += pcm.len() as u64;
        out.push(WsMessage::Binary(self.enc.encode(&pcm)?));
        Ok(())
    }

    /// Transcribe has no flush: its own endpointing closes segments.
    fn finalize(&mut self, _out: &mut Vec<WsMessage>) {}

    fn keepalive(&mut self, out: &mut Vec<WsMessage>) {
        self.pcm_bytes += self.silence.len() as u64;
        // 20 ms of PCM is far under the frame limit; framing it cannot fail.
        match self.enc.encode(&self.silence) {
            Ok(frame) => out.push(WsMessage::Binary(frame)),
            Err(e) => tracing::warn!(error = %e, "transcribe: keep-alive not framed"),
        }
    }

    /// The end-of-stream signal is an empty `AudioEvent`.
    fn close(&mut self, out: &mut Vec<WsMessage>) -> Flow {
        match self.enc.encode(&[]) {
            Ok(frame) => {
                out.push(WsMessage::Binary(frame));
                Flow::Continue
            }
            Err(e) => {
                tracing::warn!(error = %e, "transcribe: end of stream not framed");
                Flow::Finished
            }
        }
    }

    /// Transcribe sends nothing as text.
    fn decode(
        &mut self,
        _text: &str,
        _events: &mut Vec<SttEvent>,
        _out: &mut Vec<WsMessage>,
    ) -> Result<Flow, SttError> {
        Ok(Flow::Continue)
    }

    fn binary(&mut self, frame: &[u8], events: &mut Vec<SttEvent>) -> Result<Flow, SttError> {
        decode(frame, events)?;
        Ok(Flow::Continue)
    }

    fn closed(frame: Option<&CloseFrame>, closing: bool) -> Result<(), SttError> {
        strict_closed(frame, closing)
    }

    fn usage(&self, _sent_bytes: u64, sample_rate: u32) -> SttEvent {
        SttEvent::Usage { audio_ms: pcm_ms(self.pcm_bytes, sample_rate), estimated: true }
    }
}

/// Encodes `AudioEvent`s into one reused buffer: the three header values are static and the
/// allocation is reclaimed once the previous frame has been written.
pub(super) struct AudioEncoder {
    headers: [Header; 3],
    buf: BytesMut,
}

impl AudioEncoder {
    pub(super) fn new() -> Self {
        Self {
            // The header order AWS's docs and pipecat use.
            headers: [
                Header::new(":content-type", "application/octet-stream"),
                Header::new(":event-type", "AudioEvent"),
                Header::new(":message-type", "event"),
            ],
            buf: BytesMut::with_capacity(1024),
        }
    }

    /// One `AudioEvent` frame; an empty `pcm` is the end-of-stream signal.
    pub(super) fn encode(&mut self, pcm: &[u8]) -> Result<Bytes, SttError> {
        eventstream::encode_into(&mut self.buf, &self.headers, pcm)
            .map_err(|e| SttError::Protocol(format!("cannot frame audio: {e}")))?;
        Ok(self.buf.split().freeze())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TranscriptEvent {
    transcript: Transcript,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Transcript {
    results: Vec<TranscriptResult>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TranscriptResult {
    start_time: f64,
    end_time: f64,
    is_partial: bool,
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Alternative {
    transcript: String,
}

#[derive(Deserialize)]
struct ExceptionBody {
    #[serde(alias = "message")]
    #[serde(rename = "Message", default)]
    message: String,
}

/// Decodes one server frame into events. Unknown event types are skipped, as Smithy requires.
pub(crate) fn decode(frame: &[u8], out: &mut Vec<SttEvent>) -> Result<(), SttError> {
    let msg = Message::decode(frame).map_err(|e| SttError::Protocol(e.to_string()))?;
    match msg.message_type() {
        Some("event") => {
            if msg.event_type() == Some("TranscriptEvent") {
                transcript(&msg.payload, out)?;
            }
            Ok(())
        }
        Some("exception") => Err(exception(msg.exception_type().unwrap_or("UnknownException"), &msg.payload)),
        Some("error") => Err(SttError::Protocol(format!(
            "{}: {}",
            msg.header_str(":error-code").unwrap_or("UnknownError"),
            msg.header_str(":error-message").unwrap_or_default()
        ))),
        other => Err(SttError::Protocol(format!("event-stream message type {other:?}"))),
    }
}

pub(crate) fn transcript(payload: &[u8], out: &mut Vec<SttEvent>) -> Result<(), SttError> {
    let ev: TranscriptEvent =
        serde_json::from_slice(payload).map_err(|e| SttError::Protocol(format!("TranscriptEvent: {e}")))?;
    for r in ev.transcript.results {
        let Some(alt) = r.alternatives.into_iter().next() else { continue };
        let (text, start_s, end_s) = (alt.transcript, r.start_time, r.end_time);
        out.push(if r.is_partial {
            SttEvent::Interim { text, start_s, end_s }
        } else {
            // A non-partial result closes its segment at a pause: Transcribe's own endpoint.
            SttEvent::Final { text, start_s, end_s, speech_final: true }
        });
    }
    Ok(())
}

/// A modeled exception (A2.1 table) → typed error.
fn exception(kind: &str, payload: &[u8]) -> SttError {
    let message = serde_json::from_slice::<ExceptionBody>(payload)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(payload).into_owned());
    match kind {
        "UnrecognizedClientException" | "AccessDeniedException" | "InvalidSignatureException" => SttError::Unauthorized,
        "LimitExceededException" | "ThrottlingException" => SttError::RateLimited,
        _ => SttError::Protocol(format!("{kind}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(msg: Message) -> Vec<u8> {
        msg.encode().unwrap()
    }

    #[test]
    fn audio_frames_match_the_worked_example() {
        let mut enc = AudioEncoder::new();
        let f = enc.encode(&[0x01, 0x00, 0xff, 0xff]).unwrap();
        assert_eq!((f.len(), &f[..12]), (108, &[0, 0, 0, 0x6c, 0, 0, 0, 0x58, 0x5c, 0x50, 0x9c, 0xe3][..]));
        drop(f);
        let end = enc.encode(&[]).unwrap();
        assert_eq!(&end[100..], &[0x5c, 0xc6, 0x40, 0x95]);
    }

    #[test]
    fn partial_and_final_results() {
        let body = r#"{"Transcript":{"Results":[{"ResultId":"r1","StartTime":0.13,"EndTime":1.67,"IsPartial":true,
            "Alternatives":[{"Transcript":"Good day","Items":[]}]}]}}"#;
        let mut out = Vec::new();
        decode(&frame(Message::event("TranscriptEvent", "application/json", body.as_bytes().to_vec())), &mut out)
            .unwrap();
        let fin = body.replace("\"IsPartial\":true", "\"IsPartial\":false");
        decode(&frame(Message::event("TranscriptEvent", "application/json", fin.into_bytes())), &mut out).unwrap();
        let empty = r#"{"Transcript":{"Results":[]}}"#;
        decode(&frame(Message::event("TranscriptEvent", "application/json", empty.as_bytes().to_vec())), &mut out)
            .unwrap();
        decode(&frame(Message::event("SomethingNew", "application/json", &b"{}"[..])), &mut out).unwrap();
        assert_eq!(
            out,
            [
                SttEvent::Interim { text: "Good day".into(), start_s: 0.13, end_s: 1.67 },
                SttEvent::Final { text: "Good day".into(), start_s: 0.13, end_s: 1.67, speech_final: true },
            ]
        );
    }

    #[test]
    fn exceptions_map_to_typed_errors() {
        let mut out = Vec::new();
        let exc = |kind: &'static str| {
            frame(Message::exception(
                kind,
                &br#"{"Message":"Your request timed out because no new audio was received for 15 seconds."}"#[..],
            ))
        };
        assert_eq!(decode(&exc("UnrecognizedClientException"), &mut out), Err(SttError::Unauthorized));
        assert_eq!(decode(&exc("LimitExceededException"), &mut out), Err(SttError::RateLimited));
        let Err(SttError::Protocol(m)) = decode(&exc("BadRequestException"), &mut out) else { panic!() };
        assert!(m.starts_with("BadRequestException: Your request timed out"), "{m}");
        assert!(matches!(decode(&[0, 1, 2], &mut out), Err(SttError::Protocol(_))));
        assert!(out.is_empty());
    }
}
