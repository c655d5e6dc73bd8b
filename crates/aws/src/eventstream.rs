//! The `application/vnd.amazon.eventstream` binary framing: prelude (total length, headers
//! length, prelude CRC32), typed headers, payload, message CRC32. Used by Transcribe (audio in,
//! transcripts out), Bedrock ConverseStream and the Polly stream API.

use bytes::{Buf, Bytes, BytesMut};
use std::borrow::Cow;

/// Prelude (two lengths + CRC) bytes.
pub const PRELUDE_LEN: usize = 12;
/// Prelude plus the trailing message CRC: the size of a message with no headers and payload.
pub const OVERHEAD: usize = PRELUDE_LEN + 4;
/// Largest message accepted (AWS's limit is 16 MiB total, 128 KiB of headers).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
pub const MAX_HEADERS_LEN: usize = 128 * 1024;

/// A header value, one per wire type (0–9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    ByteArray(Bytes),
    String(Cow<'static, str>),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl HeaderValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn encoded_len(&self) -> usize {
        1 + match self {
            HeaderValue::Bool(_) => 0,
            HeaderValue::Byte(_) => 1,
            HeaderValue::Int16(_) => 2,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) | HeaderValue::Timestamp(_) => 8,
            HeaderValue::ByteArray(b) => 2 + b.len(),
            HeaderValue::String(s) => 2 + s.len(),
            HeaderValue::Uuid(_) => 16,
        }
    }
}

impl From<&'static str> for HeaderValue {
    fn from(s: &'static str) -> Self {
        HeaderValue::String(Cow::Borrowed(s))
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        HeaderValue::String(Cow::Owned(s))
    }
}

/// One header: the name is at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Cow<'static, str>,
    pub value: HeaderValue,
}

impl Header {
    pub fn new(name: impl Into<Cow<'static, str>>, value: impl Into<HeaderValue>) -> Self {
        Self { name: name.into(), value: value.into() }
    }
}

/// A decoded (or to-be-encoded) message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<Header>,
    pub payload: Bytes,
}

/// Why bytes are not a valid event-stream message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event-stream prelude checksum mismatch: computed {computed:#010x}, received {received:#010x}")]
    PreludeChecksumMismatch { computed: u32, received: u32 },
    #[error("event-stream message checksum mismatch: computed {computed:#010x}, received {received:#010x}")]
    MessageChecksumMismatch { computed: u32, received: u32 },
    #[error("event-stream message length {0} out of range")]
    InvalidMessageLength(u32),
    #[error("event-stream headers length {0} invalid for the message")]
    InvalidHeadersLength(u32),
    #[error("event-stream header is malformed")]
    InvalidHeader,
    #[error("event-stream header type {0} is unknown")]
    InvalidHeaderType(u8),
    #[error("event-stream header name or string is not UTF-8")]
    InvalidUtf8,
    #[error("event-stream header name or value too long to encode")]
    HeaderTooLong,
    #[error("event-stream message truncated")]
    Truncated,
    #[error("event-stream frame has {0} bytes after the message")]
    TrailingBytes(usize),
}

impl Message {
    pub fn new(headers: Vec<Header>, payload: impl Into<Bytes>) -> Self {
        Self { headers, payload: payload.into() }
    }

    /// A Smithy `event`: `:message-type=event`, `:event-type`, `:content-type`.
    pub fn event(event_type: impl Into<HeaderValue>, content_type: &'static str, payload: impl Into<Bytes>) -> Self {
        Self::new(
            vec![
                Header::new(":event-type", event_type),
                Header::new(":content-type", content_type),
                Header::new(":message-type", "event"),
            ],
            payload,
        )
    }

    /// A Smithy modeled error: `:message-type=exception`, `:exception-type`, JSON `{"Message":…}`
    /// payload the caller supplies.
    pub fn exception(exception_type: impl Into<HeaderValue>, json_payload: impl Into<Bytes>) -> Self {
        Self::new(
            vec![
                Header::new(":exception-type", exception_type),
                Header::new(":content-type", "application/json"),
                Header::new(":message-type", "exception"),
            ],
            json_payload,
        )
    }

    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|h| h.name == name).map(|h| &h.value)
    }

    /// A string header's value.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// `:message-type` (`event`, `exception`, `error`).
    pub fn message_type(&self) -> Option<&str> {
        self.header_str(":message-type")
    }

    pub fn event_type(&self) -> Option<&str> {
        self.header_str(":event-type")
    }

    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(":exception-type")
    }

    /// Encodes into a fresh buffer.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        encode_into(&mut out, &self.headers, &self.payload)?;
        Ok(out)
    }

    /// Decodes exactly one whole message (e.g. one websocket binary frame).
    pub fn decode(frame: &[u8]) -> Result<Message, FrameError> {
        let mut dec = MessageDecoder::new();
        dec.push(frame);
        let msg = dec.next_message()?.ok_or(FrameError::Truncated)?;
        match dec.buffered() {
            0 => Ok(msg),
            n => Err(FrameError::TrailingBytes(n)),
        }
    }
}

/// A growable byte buffer a message can be encoded into: `Vec<u8>`, or `BytesMut` so that
/// `split().freeze()` hands the frame to a socket and the next encode reuses the allocation.
pub trait EncodeBuf: std::ops::Deref<Target = [u8]> {
    fn put(&mut self, bytes: &[u8]);
    fn reserve_more(&mut self, n: usize);
}

impl EncodeBuf for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn reserve_more(&mut self, n: usize) {
        self.reserve(n);
    }
}

impl EncodeBuf for BytesMut {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn reserve_more(&mut self, n: usize) {
        self.reserve(n);
    }
}

/// Appends one encoded message to `out` (which is not cleared, so a caller can reuse one
/// buffer per stream instead of allocating per audio chunk).
pub fn encode_into<B: EncodeBuf>(out: &mut B, headers: &[Header], payload: &[u8]) -> Result<(), FrameError> {
    let mut headers_len = 0usize;
    for h in headers {
        if h.name.len() > 255 {
            return Err(FrameError::HeaderTooLong);
        }
        if let HeaderValue::ByteArray(_) | HeaderValue::String(_) = h.value {
            if h.value.encoded_len() - 3 > usize::from(u16::MAX) {
                return Err(FrameError::HeaderTooLong);
            }
        }
        headers_len += 1 + h.name.len() + h.value.encoded_len();
    }
    let total = OVERHEAD + headers_len + payload.len();
    if total > MAX_MESSAGE_LEN || headers_len > MAX_HEADERS_LEN {
        return Err(FrameError::InvalidMessageLength(u32::try_from(total).unwrap_or(u32::MAX)));
    }
    let start = out.len();
    out.reserve_more(total);
    // Both fit in u32: bounded by MAX_MESSAGE_LEN above.
    out.put(&(total as u32).to_be_bytes());
    out.put(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[start..start + 8]);
    out.put(&prelude_crc.to_be_bytes());
    for h in headers {
        out.put(&[h.name.len() as u8]);
        out.put(h.name.as_bytes());
        write_value(out, &h.value);
    }
    out.put(payload);
    let message_crc = crc32fast::hash(&out[start..]);
    out.put(&message_crc.to_be_bytes());
    Ok(())
}

fn write_value<B: EncodeBuf>(out: &mut B, value: &HeaderValue) {
    match value {
        HeaderValue::Bool(true) => out.put(&[0]),
        HeaderValue::Bool(false) => out.put(&[1]),
        HeaderValue::Byte(b) => {
            out.put(&[2]);
            out.put(&b.to_be_bytes());
        }
        HeaderValue::Int16(v) => {
            out.put(&[3]);
            out.put(&v.to_be_bytes());
        }
        HeaderValue::Int32(v) => {
            out.put(&[4]);
            out.put(&v.to_be_bytes());
        }
        HeaderValue::Int64(v) => {
            out.put(&[5]);
            out.put(&v.to_be_bytes());
        }
        HeaderValue::ByteArray(b) => {
            out.put(&[6]);
            out.put(&(b.len() as u16).to_be_bytes());
            out.put(b);
        }
        HeaderValue::String(s) => {
            out.put(&[7]);
            out.put(&(s.len() as u16).to_be_bytes());
            out.put(s.as_bytes());
        }
        HeaderValue::Timestamp(ms) => {
            out.put(&[8]);
            out.put(&ms.to_be_bytes());
        }
        HeaderValue::Uuid(u) => {
            out.put(&[9]);
            out.put(u);
        }
    }
}

/// Incremental decoder: feed bytes as they arrive (HTTP/2 body chunks or websocket frames, whose
/// boundaries need not match messages) and pull whole, CRC-checked messages out.
#[derive(Debug, Default)]
pub struct MessageDecoder {
    buf: BytesMut,
}

impl MessageDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet part of a returned message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. After an error the
    /// stream is unusable (AWS framing has no resynchronization).
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        let Some(prelude) = self.buf.get(..PRELUDE_LEN) else {
            return Ok(None);
        };
        let word =
            |i: usize| prelude.get(i..i + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).unwrap_or(0);
        let (total, headers_len, received) = (word(0), word(4), word(8));
        let computed = crc32fast::hash(prelude.get(..8).unwrap_or_default());
        if computed != received {
            return Err(FrameError::PreludeChecksumMismatch { computed, received });
        }
        let total_len = total as usize;
        if !(OVERHEAD..=MAX_MESSAGE_LEN).contains(&total_len) {
            return Err(FrameError::InvalidMessageLength(total));
        }
        let h_len = headers_len as usize;
        if h_len == 1 || h_len > MAX_HEADERS_LEN || h_len > total_len - OVERHEAD {
            return Err(FrameError::InvalidHeadersLength(headers_len));
        }
        if self.buf.len() < total_len {
            self.buf.reserve(total_len - self.buf.len());
            return Ok(None);
        }
        let mut frame = self.buf.split_to(total_len).freeze();
        let body_end = total_len - 4;
        let computed = crc32fast::hash(frame.get(..body_end).unwrap_or_default());
        let received = frame.get(body_end..).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).unwrap_or(0);
        if computed != received {
            return Err(FrameError::MessageChecksumMismatch { computed, received });
        }
        frame.truncate(body_end);
        frame.advance(PRELUDE_LEN);
        let mut header_bytes = frame.split_to(h_len);
        let mut headers = Vec::new();
        while header_bytes.has_remaining() {
            headers.push(read_header(&mut header_bytes)?);
        }
        Ok(Some(Message { headers, payload: frame }))
    }
}

fn take(buf: &mut Bytes, n: usize) -> Result<Bytes, FrameError> {
    if buf.remaining() < n {
        return Err(FrameError::InvalidHeader);
    }
    Ok(buf.split_to(n))
}

fn take_array<const N: usize>(buf: &mut Bytes) -> Result<[u8; N], FrameError> {
    let b = take(buf, N)?;
    b.as_ref().try_into().map_err(|_| FrameError::InvalidHeader)
}

fn read_header(buf: &mut Bytes) -> Result<Header, FrameError> {
    let [name_len] = take_array::<1>(buf)?;
    let name = take(buf, usize::from(name_len))?;
    let name = String::from_utf8(name.to_vec()).map_err(|_| FrameError::InvalidUtf8)?;
    let [kind] = take_array::<1>(buf)?;
    let value = match kind {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(i8::from_be_bytes(take_array(buf)?)),
        3 => HeaderValue::Int16(i16::from_be_bytes(take_array(buf)?)),
        4 => HeaderValue::Int32(i32::from_be_bytes(take_array(buf)?)),
        5 => HeaderValue::Int64(i64::from_be_bytes(take_array(buf)?)),
        6 | 7 => {
            let len = u16::from_be_bytes(take_array(buf)?);
            let bytes = take(buf, usize::from(len))?;
            if kind == 6 {
                HeaderValue::ByteArray(bytes)
            } else {
                HeaderValue::String(Cow::Owned(String::from_utf8(bytes.to_vec()).map_err(|_| FrameError::InvalidUtf8)?))
            }
        }
        8 => HeaderValue::Timestamp(i64::from_be_bytes(take_array(buf)?)),
        9 => HeaderValue::Uuid(take_array(buf)?),
        other => return Err(FrameError::InvalidHeaderType(other)),
    };
    Ok(Header { name: Cow::Owned(name), value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    fn audio_headers() -> Vec<Header> {
        vec![
            Header::new(":content-type", "application/octet-stream"),
            Header::new(":event-type", "AudioEvent"),
            Header::new(":message-type", "event"),
        ]
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn published_vectors_round_trip() {
        let no_headers = unhex("0000001d 00000000 fd528c5a 7b27666f6f273a27626172277d c3653936");
        let m = Message::decode(&no_headers).unwrap();
        assert!(m.headers.is_empty());
        assert_eq!(&m.payload[..], b"{'foo':'bar'}");
        assert_eq!(m.encode().unwrap(), no_headers);

        let one_header = unhex(
            "0000003d 00000020 07fd8396 0c636f6e74656e742d74797065 07 0010 6170706c69636174696f6e2f6a736f6e \
             7b27666f6f273a27626172277d 8d9c08b1",
        );
        let m = Message::decode(&one_header).unwrap();
        assert_eq!(m.header_str("content-type"), Some("application/json"));
        assert_eq!(m.encode().unwrap(), one_header);
    }

    #[test]
    fn corrupt_prelude_and_message_crc() {
        let mut bad = unhex("0000001d 00000000 deadbeef 7b27666f6f273a27626172277d c3653936");
        assert_eq!(
            Message::decode(&bad).unwrap_err(),
            FrameError::PreludeChecksumMismatch { computed: 0xFD52_8C5A, received: 0xDEAD_BEEF }
        );
        bad = unhex("0000001d 00000000 fd528c5a 7b27666f6f273a27626172277d c3653937");
        assert!(matches!(Message::decode(&bad), Err(FrameError::MessageChecksumMismatch { .. })));
        // The vector file's case: prelude CRC replaced in the one-header message.
        let v = unhex("0000003d 00000020 deadbeef 0c636f6e74656e742d74797065 07 0010 6170706c69636174696f6e2f6a736f6e 7b27666f6f273a27626172277d 8d9c08b1");
        assert_eq!(
            Message::decode(&v).unwrap_err(),
            FrameError::PreludeChecksumMismatch { computed: 0x07FD_8396, received: 0xDEAD_BEEF }
        );
    }

    #[test]
    fn worked_audio_event_and_end_of_stream() {
        let mut out = Vec::new();
        encode_into(&mut out, &audio_headers(), &[0x01, 0x00, 0xff, 0xff]).unwrap();
        assert_eq!(out.len(), 108);
        assert_eq!(&out[..12], &unhex("0000006c 00000058 5c509ce3")[..]);
        assert_eq!(&out[104..], &unhex("e5aed301")[..]);
        assert_eq!(&out[12..26], b"\r:content-type");

        let mut bm = BytesMut::new();
        encode_into(&mut bm, &audio_headers(), &[]).unwrap();
        let out = bm.split().freeze();
        assert_eq!(out.len(), 104);
        assert_eq!(&out[..12], &unhex("00000068 00000058 a9d03a23")[..]);
        assert_eq!(&out[100..], &unhex("5cc64095")[..]);
    }

    #[test]
    fn real_server_frames_decode() {
        let transcript = unhex(
            "00000082 00000055 b50599e0 0b3a6576656e742d74797065 07000f 5472616e7363726970744576656e74 \
             0d3a636f6e74656e742d74797065 070010 6170706c69636174696f6e2f6a736f6e 0d3a6d6573736167652d74797065 \
             070005 6576656e74 7b225472616e736372697074223a7b22526573756c7473223a5b5d7d7d ac5a832a",
        );
        let m = Message::decode(&transcript).unwrap();
        assert_eq!((m.message_type(), m.event_type()), (Some("event"), Some("TranscriptEvent")));
        assert_eq!(&m.payload[..], br#"{"Transcript":{"Results":[]}}"#);
        assert_eq!(m.encode().unwrap(), transcript);

        let exc = Message::new(
            vec![
                Header::new(":exception-type", "BadRequestException"),
                Header::new(":content-type", "application/json"),
                Header::new(":message-type", "exception"),
            ],
            &br#"{"Message":"A complete signal was sent without the preceding empty frame."}"#[..],
        );
        let bytes = exc.encode().unwrap();
        assert_eq!(bytes.len(), 188);
        assert_eq!(&bytes[..12], &unhex("000000bc 00000061 8aa06bb2")[..]);
        assert_eq!(&bytes[184..], &unhex("1633ab2f")[..]);
        assert_eq!(Message::decode(&bytes).unwrap().exception_type(), Some("BadRequestException"));
    }

    #[test]
    fn incremental_decode_across_arbitrary_splits_and_all_header_types() {
        let all = Message::new(
            vec![
                Header::new("t", HeaderValue::Bool(true)),
                Header::new("f", HeaderValue::Bool(false)),
                Header::new("b", HeaderValue::Byte(-3)),
                Header::new("s", HeaderValue::Int16(-300)),
                Header::new("i", HeaderValue::Int32(70_000)),
                Header::new("l", HeaderValue::Int64(-5_000_000_000)),
                Header::new("a", HeaderValue::ByteArray(Bytes::from_static(&[1, 2, 3]))),
                Header::new(":date", HeaderValue::Timestamp(1_440_938_160_000)),
                Header::new("u", HeaderValue::Uuid([7; 16])),
            ],
            &b"payload"[..],
        );
        let mut stream = all.encode().unwrap();
        encode_into(&mut stream, &audio_headers(), &[]).unwrap();
        for split in [1, 5, 12, 13, 40, stream.len() - 1] {
            let mut dec = MessageDecoder::new();
            let mut got = Vec::new();
            for chunk in stream.chunks(split) {
                dec.push(chunk);
                while let Some(m) = dec.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got.len(), 2, "split {split}");
            assert_eq!(got[0], all);
            assert_eq!(got[1].event_type(), Some("AudioEvent"));
            assert_eq!(dec.buffered(), 0);
        }
    }

    #[test]
    fn rejects_bad_lengths_and_types() {
        let mut m = Vec::new();
        encode_into(&mut m, &[Header::new("x", HeaderValue::Byte(1))], b"").unwrap();
        // Header type 2 → 42 (unknown), then fix CRCs by re-encoding the raw bytes.
        let mut raw = m.clone();
        raw[14] = 42;
        let len = raw.len();
        let crc = crc32fast::hash(&raw[..len - 4]);
        raw[len - 4..].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(Message::decode(&raw).unwrap_err(), FrameError::InvalidHeaderType(42));

        let mut short = 8u32.to_be_bytes().to_vec();
        short.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32fast::hash(&short);
        short.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(Message::decode(&short).unwrap_err(), FrameError::InvalidMessageLength(8));
        assert_eq!(Message::decode(&m[..15]).unwrap_err(), FrameError::Truncated);
    }
}
