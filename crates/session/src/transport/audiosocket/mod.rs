//! Asterisk AudioSocket (shared/protocols/telephony.md A5): raw TCP, Asterisk dials us. Every
//! message is `kind: u8`, `length: u16` big-endian, then `length` payload bytes. The first
//! message is the call's UUID; audio is signed 16-bit little-endian mono PCM at the rate its kind
//! names (`0x10` = 8 kHz); `0x00` hangs up, from either side; `0xff` is an error.
//!
//! There is no clear and no mark: Asterisk plays our audio as it arrives. So the writer's 20 ms
//! pacing is the playout clock, and barge-in is the writer dropping its queue, with nothing to
//! send. The protocol carries nothing but the UUID, so which agent answers is the listener's
//! choice (`serve --audiosocket-agent`), not the call's.
//!
//! Each frame travels through the runtime as one binary [`Message`], header included; [`tcp`]
//! does the framing over the socket and reads the UUID before a session exists.

mod tcp;

pub use tcp::{serve, ListenerConfig};

use super::{Inbound, StartInfo, TransportError, WireCodec, WireEncoder};
use crate::SessionEvent;
use axum::extract::ws::Message;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

pub const KIND_HANGUP: u8 = 0x00;
pub const KIND_UUID: u8 = 0x01;
pub const KIND_DTMF: u8 = 0x03;
/// Signed linear 16-bit, 8 kHz: the only audio kind every Asterisk version agrees on.
pub const KIND_SLIN: u8 = 0x10;
pub const KIND_ERROR: u8 = 0xff;
/// Payload of an error frame: the caller hung up.
pub const ERROR_HANGUP: u8 = 0x01;

pub const HEADER_LEN: usize = 3;
/// Largest payload accepted: 20 ms at 192 kHz is 7,680 bytes, so this leaves room for 40 ms
/// frames at every rate and refuses a length field that is really garbage.
pub const MAX_PAYLOAD: usize = 16 * 1024;
/// `00 00 00`: hang up.
pub const HANGUP_FRAME: [u8; 3] = [KIND_HANGUP, 0, 0];
/// `ff 00 00`: an error without a code; sent just before we hang up on a failed call. The
/// protocol's codes (caller hung up, frame forwarding, memory) describe Asterisk's own failures.
pub const ERROR_FRAME: [u8; 3] = [KIND_ERROR, 0, 0];

/// Sample rate of an audio kind. Upstream numbers the rates from `0x11` = 12 kHz, but an older
/// upstream header made `0x11` 16 kHz, so `0x11` is refused rather than guessed.
pub fn audio_rate(kind: u8) -> Option<u32> {
    Some(match kind {
        KIND_SLIN => 8000,
        0x12 => 16000,
        0x13 => 24000,
        0x14 => 32000,
        0x15 => 44100,
        0x16 => 48000,
        0x17 => 96000,
        0x18 => 192000,
        _ => return None,
    })
}

/// The audio kind for `rate`, the inverse of [`audio_rate`].
pub fn audio_kind(rate: u32) -> Option<u8> {
    (KIND_SLIN..=0x18).find(|k| audio_rate(*k) == Some(rate))
}

/// Kinds the protocol defines; anything else means the stream is not AudioSocket (or lost sync).
fn known_kind(kind: u8) -> bool {
    matches!(kind, KIND_HANGUP | KIND_UUID | KIND_DTMF | KIND_SLIN..=0x18 | KIND_ERROR)
}

/// The byte stream is not AudioSocket framing; nothing after it can be trusted.
#[derive(Debug, Error)]
pub enum FrameError {
    #[error("unknown message kind 0x{0:02x}")]
    UnknownKind(u8),
    #[error("message of {0} bytes is larger than the {MAX_PAYLOAD}-byte limit")]
    Oversize(usize),
    #[error("the connection closed inside a message")]
    Truncated,
    #[error("socket error: {0}")]
    Io(std::io::Error),
}

impl FrameError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownKind(_) => "unknown_kind",
            Self::Oversize(_) => "oversize",
            Self::Truncated => "truncated",
            Self::Io(_) => "socket",
        }
    }
}

fn read_err(e: std::io::Error) -> FrameError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        FrameError::Truncated
    } else {
        FrameError::Io(e)
    }
}

/// Read one whole message (header included) into `buf` and split it off, so the space is
/// reused once the frame is dropped. `None` when the peer closed between messages. The kind and
/// length are checked before the payload is read: garbage is refused after three bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
    let kind = match r.read_u8().await {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(FrameError::Io(e)),
    };
    if !known_kind(kind) {
        return Err(FrameError::UnknownKind(kind));
    }
    let len = r.read_u16().await.map_err(read_err)?;
    let n = usize::from(len);
    if n > MAX_PAYLOAD {
        return Err(FrameError::Oversize(n));
    }
    buf.clear();
    buf.reserve(HEADER_LEN + n);
    buf.put_u8(kind);
    buf.put_u16(len);
    buf.resize(HEADER_LEN + n, 0);
    r.read_exact(&mut buf[HEADER_LEN..]).await.map_err(read_err)?;
    Ok(Some(buf.split().freeze()))
}

/// Reads whole messages from a byte stream into one reused buffer.
pub struct FrameReader<R> {
    r: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(r: R) -> Self {
        Self { r, buf: BytesMut::with_capacity(4 * 1024) }
    }

    /// The next message, header included; see [`read_frame`].
    pub async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        read_frame(&mut self.r, &mut self.buf).await
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.r
    }
}

/// A message's kind and payload, checking its length field.
pub fn parse(frame: &[u8]) -> Result<(u8, &[u8]), TransportError> {
    let Some((&[kind, hi, lo], payload)) = frame.split_first_chunk::<HEADER_LEN>() else {
        return Err(TransportError::BadFrame(format!("{} bytes is shorter than a header", frame.len())));
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if payload.len() != len {
        return Err(TransportError::BadFrame(format!("length field {len}, payload {} bytes", payload.len())));
    }
    Ok((kind, payload))
}

/// Append one message to `out`.
pub fn push_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = payload.len().min(usize::from(u16::MAX));
    out.push(kind);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&payload[..len]);
}

/// The inbound half. `Start` is reported with the first audio frame, not the UUID: the audio
/// kind is what tells the rate, and the runtime fixes its resamplers at start. That first 20 ms
/// frame is not transcribed.
pub struct AudioSocketCodec {
    agent: String,
    uuid: Option<String>,
    rate: Option<u32>,
}

impl AudioSocketCodec {
    /// A call answered by `agent`.
    pub fn new(agent: &str) -> Self {
        Self { agent: agent.to_string(), uuid: None, rate: None }
    }

    fn uuid(&mut self, payload: &[u8]) -> Result<Inbound, TransportError> {
        let id = uuid::Uuid::from_slice(payload)
            .map_err(|_| TransportError::BadFrame(format!("a UUID is 16 bytes, not {}", payload.len())))?
            .to_string();
        match &self.uuid {
            Some(known) if *known != id => Err(TransportError::BadFrame("a second, different UUID".into())),
            Some(_) => Ok(Inbound::Ignore),
            None => {
                self.uuid = Some(id);
                Ok(Inbound::Ignore)
            }
        }
    }

    fn audio(&mut self, kind: u8, payload: &[u8], pcm: &mut Vec<i16>) -> Result<Inbound, TransportError> {
        let Some(uuid) = &self.uuid else { return Err(TransportError::MediaBeforeStart) };
        let rate = audio_rate(kind).ok_or_else(|| {
            TransportError::UnsupportedFormat(format!("audio kind 0x{kind:02x} (12 or 16 kHz by Asterisk version)"))
        })?;
        media::l16::decode_le_into(payload, pcm).map_err(|e| TransportError::BadAudio(e.to_string()))?;
        match self.rate {
            Some(r) if r == rate => Ok(Inbound::Audio),
            Some(r) => Err(TransportError::UnsupportedFormat(format!("audio rate changed from {r} to {rate} Hz"))),
            None => {
                self.rate = Some(rate);
                let params = HashMap::from([("agent".to_string(), self.agent.clone())]);
                Ok(Inbound::Start(StartInfo { stream_id: uuid.clone(), call_id: Some(uuid.clone()), params }))
            }
        }
    }
}

/// DTMF digits Asterisk sends, one ASCII byte each.
const DIGITS: &[u8] = b"0123456789*#ABCD";

impl WireCodec for AudioSocketCodec {
    fn gateway(&self) -> &'static str {
        "asterisk"
    }

    fn decode(&mut self, msg: &Message, pcm: &mut Vec<i16>) -> Result<Inbound, TransportError> {
        let frame = match msg {
            Message::Binary(b) => b,
            Message::Close(_) => return Ok(Inbound::Stop),
            Message::Ping(_) | Message::Pong(_) => return Ok(Inbound::Ignore),
            Message::Text(_) => return Err(TransportError::BadFrame("text is not part of AudioSocket".into())),
        };
        let (kind, payload) = parse(frame)?;
        match kind {
            KIND_UUID => self.uuid(payload),
            KIND_HANGUP => Ok(Inbound::Stop),
            KIND_ERROR => match payload.first() {
                None | Some(&ERROR_HANGUP) => Ok(Inbound::Stop),
                Some(0x02) => Err(TransportError::GatewayError("frame forwarding error".into())),
                Some(0x04) => Err(TransportError::GatewayError("memory error".into())),
                Some(c) => Err(TransportError::GatewayError(format!("error code 0x{c:02x}"))),
            },
            KIND_DTMF => match payload {
                [d] if DIGITS.contains(&d.to_ascii_uppercase()) => {
                    Ok(Inbound::Dtmf(char::from(d.to_ascii_uppercase()).to_string()))
                }
                _ => Err(TransportError::BadFrame("DTMF is one digit 0-9, *, #, A-D".into())),
            },
            k if (KIND_SLIN..=0x18).contains(&k) => self.audio(k, payload, pcm),
            k => Err(TransportError::BadFrame(format!("unknown message kind 0x{k:02x}"))),
        }
    }

    fn input_rate(&self) -> u32 {
        self.rate.unwrap_or(8000)
    }

    fn encoder(&self) -> Box<dyn WireEncoder> {
        let rate = self.input_rate();
        let kind = audio_kind(rate).unwrap_or(KIND_SLIN);
        Box::new(AudioSocketEncoder {
            kind,
            rate,
            raw: Vec::with_capacity(HEADER_LEN + media::samples_per_20ms(rate) * 2),
        })
    }
}

/// The outbound half: agent audio in the caller's own audio kind; an error frame before we hang
/// up on a call that failed.
pub struct AudioSocketEncoder {
    kind: u8,
    rate: u32,
    raw: Vec<u8>,
}

impl WireEncoder for AudioSocketEncoder {
    fn output_rate(&self) -> u32 {
        self.rate
    }

    fn encode_audio(&mut self, frame: &[i16]) -> Message {
        let n = frame.len().min(MAX_PAYLOAD / 2);
        self.raw.clear();
        self.raw.push(self.kind);
        self.raw.extend_from_slice(&((n * 2) as u16).to_be_bytes());
        self.raw.resize(3 + n * 2, 0);
        media::l16::write_le(&frame[..n], &mut self.raw[3..]);
        Message::Binary(Bytes::copy_from_slice(&self.raw))
    }

    /// Nothing to send: audio not yet sent was dropped by the writer, and Asterisk keeps no
    /// queue of its own beyond its jitter buffer.
    fn encode_clear(&self) -> Option<Message> {
        None
    }

    fn encode_mark(&self, _name: &str) -> Option<Message> {
        None
    }

    /// A call that ends other than by a hang-up gets an error frame before ours.
    fn encode_event(&self, ev: &SessionEvent) -> Option<Message> {
        match ev {
            SessionEvent::End { reason } if reason != "hangup" => Some(error_message()),
            _ => None,
        }
    }

    fn encode_error(&self, _code: &str, _message: &str) -> Option<Message> {
        Some(error_message())
    }
}

fn error_message() -> Message {
    Message::Binary(Bytes::from_static(&ERROR_FRAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: [u8; 16] =
        [0x63, 0xf6, 0x18, 0x63, 0x4a, 0x51, 0x4f, 0x6b, 0x86, 0xe1, 0x46, 0xed, 0xeb, 0xcf, 0x93, 0x56];

    fn msg(kind: u8, payload: &[u8]) -> Message {
        let mut v = Vec::new();
        push_frame(&mut v, kind, payload);
        Message::Binary(v.into())
    }

    fn code(r: Result<Inbound, TransportError>) -> Option<&'static str> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn decodes_a_call() {
        let mut c = AudioSocketCodec::new("a1");
        let mut pcm = Vec::new();
        assert_eq!(c.decode(&msg(KIND_UUID, &UUID), &mut pcm), Ok(Inbound::Ignore));
        let mut audio = vec![0u8; 320];
        audio[..4].copy_from_slice(&[0x02, 0x01, 0xfe, 0xff]);
        let Ok(Inbound::Start(info)) = c.decode(&msg(KIND_SLIN, &audio), &mut pcm) else { panic!("start") };
        assert_eq!(info.call_id.as_deref(), Some("63f61863-4a51-4f6b-86e1-46edebcf9356"));
        assert_eq!(info.params.get("agent").map(String::as_str), Some("a1"));
        assert_eq!(c.input_rate(), 8000);
        assert_eq!(c.decode(&msg(KIND_SLIN, &audio), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm.len(), 160);
        assert_eq!(&pcm[..2], &[0x0102, -2]);
        assert_eq!(c.decode(&msg(KIND_UUID, &UUID), &mut pcm), Ok(Inbound::Ignore));
        assert_eq!(c.decode(&msg(KIND_DTMF, b"5"), &mut pcm), Ok(Inbound::Dtmf("5".into())));
        assert_eq!(c.decode(&msg(KIND_DTMF, b"#"), &mut pcm), Ok(Inbound::Dtmf("#".into())));
        assert_eq!(c.decode(&Message::Ping(Bytes::new()), &mut pcm), Ok(Inbound::Ignore));
        assert_eq!(c.decode(&msg(KIND_ERROR, &[ERROR_HANGUP]), &mut pcm), Ok(Inbound::Stop));
        assert_eq!(c.decode(&msg(KIND_ERROR, &[]), &mut pcm), Ok(Inbound::Stop));
        assert_eq!(c.decode(&msg(KIND_HANGUP, &[]), &mut pcm), Ok(Inbound::Stop));
        assert_eq!(c.decode(&Message::Close(None), &mut pcm), Ok(Inbound::Stop));
    }

    #[test]
    fn the_audio_kind_sets_the_rate_both_ways() {
        for (kind, rate) in [(0x12u8, 16000u32), (0x13, 24000), (0x16, 48000), (0x18, 192000)] {
            let mut c = AudioSocketCodec::new("default");
            let mut pcm = Vec::new();
            c.decode(&msg(KIND_UUID, &UUID), &mut pcm).unwrap();
            let frame = vec![0u8; media::samples_per_20ms(rate) * 2];
            assert!(matches!(c.decode(&msg(kind, &frame), &mut pcm), Ok(Inbound::Start(_))));
            assert_eq!(c.input_rate(), rate);
            assert_eq!(audio_kind(rate), Some(kind));
            let mut enc = c.encoder();
            assert_eq!(enc.output_rate(), rate);
            let Message::Binary(b) = enc.encode_audio(&vec![0; media::samples_per_20ms(rate)]) else { panic!() };
            assert_eq!(parse(&b).map(|(k, p)| (k, p.len())), Ok((kind, frame.len())));
            // A different rate mid-call is refused, not resampled wrongly.
            assert_eq!(code(c.decode(&msg(KIND_SLIN, &[0; 320]), &mut pcm)), Some("unsupported_format"));
        }
    }

    #[test]
    fn bad_input_is_typed() {
        let mut c = AudioSocketCodec::new("default");
        let mut pcm = Vec::new();
        assert_eq!(code(c.decode(&msg(KIND_SLIN, &[0; 320]), &mut pcm)), Some("media_before_start"));
        assert_eq!(code(c.decode(&msg(KIND_UUID, &UUID[..15]), &mut pcm)), Some("bad_frame"));
        assert_eq!(code(c.decode(&Message::Binary(vec![0x10, 0].into()), &mut pcm)), Some("bad_frame"));
        assert_eq!(code(c.decode(&Message::Binary(vec![0x10, 0, 4, 1].into()), &mut pcm)), Some("bad_frame"));
        assert_eq!(code(c.decode(&Message::Text("hi".into()), &mut pcm)), Some("bad_frame"));
        assert_eq!(code(c.decode(&msg(0x42, &[]), &mut pcm)), Some("bad_frame"));
        c.decode(&msg(KIND_UUID, &UUID), &mut pcm).unwrap();
        let mut other = UUID;
        other[0] = 0;
        assert_eq!(code(c.decode(&msg(KIND_UUID, &other), &mut pcm)), Some("bad_frame"));
        assert_eq!(code(c.decode(&msg(0x11, &[0; 480]), &mut pcm)), Some("unsupported_format"));
        assert_eq!(code(c.decode(&msg(KIND_SLIN, &[0; 3]), &mut pcm)), Some("bad_audio"));
        assert_eq!(code(c.decode(&msg(KIND_DTMF, b"x"), &mut pcm)), Some("bad_frame"));
        assert_eq!(code(c.decode(&msg(KIND_DTMF, b"12"), &mut pcm)), Some("bad_frame"));
        assert_eq!(code(c.decode(&msg(KIND_ERROR, &[0x02]), &mut pcm)), Some("gateway_error"));
    }

    #[test]
    fn encodes_audio_and_errors_only() {
        let mut c = AudioSocketCodec::new("default");
        let mut pcm = Vec::new();
        c.decode(&msg(KIND_UUID, &UUID), &mut pcm).unwrap();
        c.decode(&msg(KIND_SLIN, &[0; 320]), &mut pcm).unwrap();
        let mut enc = c.encoder();
        let mut frame = vec![0i16; 160];
        frame[0] = 0x0102;
        frame[1] = -2;
        let Message::Binary(b) = enc.encode_audio(&frame) else { panic!("not binary") };
        assert_eq!(b.len(), 323);
        assert_eq!(&b[..7], &[0x10, 0x01, 0x40, 0x02, 0x01, 0xfe, 0xff]);
        assert!(enc.encode_clear().is_none());
        assert!(enc.encode_mark("turn-1").is_none());
        let ended = |reason: &str| enc.encode_event(&SessionEvent::End { reason: reason.into() });
        assert!(ended("hangup").is_none());
        assert_eq!(ended("stt_refused"), Some(Message::Binary(Bytes::from_static(&ERROR_FRAME))));
        assert!(enc.encode_event(&SessionEvent::Error { code: "x".into(), message: "y".into() }).is_none());
        assert!(enc.encode_error("x", "y").is_some());
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_garbage_is_refused_early() {
        let mut wire = Vec::new();
        push_frame(&mut wire, KIND_UUID, &UUID);
        push_frame(&mut wire, KIND_SLIN, &[7; 320]);
        push_frame(&mut wire, KIND_HANGUP, &[]);
        let mut r = wire.as_slice();
        let mut buf = BytesMut::new();
        let f = read_frame(&mut r, &mut buf).await.unwrap().unwrap();
        assert_eq!(parse(&f), Ok((KIND_UUID, &UUID[..])));
        let f = read_frame(&mut r, &mut buf).await.unwrap().unwrap();
        assert_eq!(f.len(), 323);
        let f = read_frame(&mut r, &mut buf).await.unwrap().unwrap();
        assert_eq!(&f[..], &HANGUP_FRAME);
        assert!(read_frame(&mut r, &mut buf).await.unwrap().is_none(), "clean end between messages");

        let err = |bytes: &'static [u8]| async move {
            let mut r = bytes;
            read_frame(&mut r, &mut BytesMut::new()).await.err().map(|e| e.code())
        };
        assert_eq!(err(b"GET / HTTP/1.1\r\n").await, Some("unknown_kind"));
        assert_eq!(err(&[0x10, 0xff, 0xff]).await, Some("oversize"));
        assert_eq!(err(&[0x10, 0x01]).await, Some("truncated"));
        assert_eq!(err(&[0x10, 0x01, 0x40, 0, 0]).await, Some("truncated"));
    }
}
