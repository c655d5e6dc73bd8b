//! Speech service WebSocket framing ("USP", protocols/aws-azure.md Z1/Z2.2), shared by the stt and
//! tts adapters and their simulators. Text frames are `Name: value\r\n` headers, a blank line, then
//! the body; binary frames are a big-endian `u16` header length, the header lines, then the body.

use bytes::{BufMut, BytesMut};
use std::fmt::Write as _;

/// Headers the protocol defines; names are matched case-insensitively like the SDK does.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Headers<'a> {
    pub path: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub stream_id: Option<&'a str>,
}

impl<'a> Headers<'a> {
    /// `Path` and a well-formed `X-RequestId`, which the service requires on every client
    /// message; the error is the reason it closes the socket with (code 1002).
    pub fn required(&self) -> Result<(&'a str, &'a str), &'static str> {
        let path = self.path.ok_or("Missing/Empty header. Path.")?;
        let id = self.request_id.ok_or("Missing/Empty header. X-RequestId.")?;
        if !is_id(id) {
            return Err("Invalid X-RequestId. Expected a UUID without dashes.");
        }
        Ok((path, id))
    }

    fn parse(block: &'a str) -> Self {
        let mut h = Headers::default();
        for line in block.split("\r\n") {
            let Some((name, value)) = line.split_once(':') else { continue };
            let (name, value) = (name.trim(), value.trim());
            let slot = if name.eq_ignore_ascii_case("path") {
                &mut h.path
            } else if name.eq_ignore_ascii_case("x-requestid") {
                &mut h.request_id
            } else if name.eq_ignore_ascii_case("content-type") {
                &mut h.content_type
            } else if name.eq_ignore_ascii_case("x-streamid") {
                &mut h.stream_id
            } else {
                continue;
            };
            *slot = Some(value).filter(|v| !v.is_empty());
        }
        h
    }
}

/// Why a frame could not be split into headers and body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameError {
    /// Text frame without the `\r\n\r\n` between headers and body.
    NoSeparator,
    /// Binary frame shorter than its declared header block, or headers not ASCII.
    BadHeaderLength,
}

impl FrameError {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoSeparator => "Missing header separator.",
            Self::BadHeaderLength => "Invalid binary message header.",
        }
    }
}

/// Splits a text frame at the first blank line. A frame of headers only (e.g. `turn.end`
/// written without the trailing blank line) is accepted with an empty body.
pub fn parse_text(frame: &str) -> Result<(Headers<'_>, &str), FrameError> {
    match frame.split_once("\r\n\r\n") {
        Some((head, body)) => Ok((Headers::parse(head), body)),
        None if frame.ends_with("\r\n") => Ok((Headers::parse(frame), "")),
        None => Err(FrameError::NoSeparator),
    }
}

pub fn parse_binary(frame: &[u8]) -> Result<(Headers<'_>, &[u8]), FrameError> {
    let [hi, lo, rest @ ..] = frame else { return Err(FrameError::BadHeaderLength) };
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    let head = rest.get(..len).ok_or(FrameError::BadHeaderLength)?;
    let head = std::str::from_utf8(head).ok().filter(|h| h.is_ascii()).ok_or(FrameError::BadHeaderLength)?;
    Ok((Headers::parse(head), rest.get(len..).unwrap_or_default()))
}

/// A text message with `X-Timestamp` set to now, written into `out` (cleared first).
pub fn write_text(out: &mut String, path: &str, request_id: &str, content_type: Option<&str>, body: &str) {
    out.clear();
    let _ = write!(out, "Path: {path}\r\nX-RequestId: {request_id}\r\nX-Timestamp: ");
    write_timestamp(out);
    out.push_str("\r\n");
    if let Some(ct) = content_type {
        let _ = write!(out, "Content-Type: {ct}\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
}

/// A binary message appended to `out`; the caller `split()`s it off, so one buffer's
/// allocation is reused frame after frame once the socket has written the previous one.
pub fn write_binary(
    out: &mut BytesMut,
    path: &str,
    request_id: &str,
    content_type: Option<&str>,
    stream_id: Option<&str>,
    body: &[u8],
) {
    let start = out.len();
    out.put_u16(0);
    let _ = write!(out, "Path: {path}\r\nX-RequestId: {request_id}\r\nX-Timestamp: ");
    write_timestamp(out);
    out.put_slice(b"\r\n");
    if let Some(ct) = content_type {
        let _ = write!(out, "Content-Type: {ct}\r\n");
    }
    if let Some(id) = stream_id {
        let _ = write!(out, "X-StreamId: {id}\r\n");
    }
    let head_len = u16::try_from(out.len() - start - 2).unwrap_or(u16::MAX);
    if let Some(prefix) = out.get_mut(start..start + 2) {
        prefix.copy_from_slice(&head_len.to_be_bytes());
    }
    out.put_slice(body);
}

/// A request or connection id as the service wants it: a UUID in 32 hex digits, no dashes.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn is_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `2026-01-01T00:00:00.000Z` for now, without a date crate (civil-from-days, Howard Hinnant).
pub fn write_timestamp(out: &mut impl std::fmt::Write) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    );
}

/// WAVE format tags the service reads from the first audio message.
pub const WAVE_PCM: u16 = 1;

/// The 44-byte RIFF header the SDK sends first, lengths 0 because the stream has no end.
pub fn wav_header(format_tag: u16, sample_rate: u32, bits: u16) -> [u8; 44] {
    let block_align = bits / 8;
    let mut h = [0u8; 44];
    let fields: [(usize, &[u8]); 11] = [
        (0, b"RIFF"),
        (8, b"WAVE"),
        (12, b"fmt "),
        (16, &16u32.to_le_bytes()),
        (20, &format_tag.to_le_bytes()),
        (22, &1u16.to_le_bytes()),
        (24, &sample_rate.to_le_bytes()),
        (28, &(sample_rate * u32::from(block_align)).to_le_bytes()),
        (32, &block_align.to_le_bytes()),
        (34, &bits.to_le_bytes()),
        (36, b"data"),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = h.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    h
}

/// What a RIFF header announces: `(format_tag, channels, sample_rate, bits_per_sample)`.
pub fn parse_wav_header(h: &[u8]) -> Option<(u16, u16, u32, u16)> {
    let u16_at = |at: usize| h.get(at..at + 2).and_then(|b| b.try_into().ok()).map(u16::from_le_bytes);
    let u32_at = |at: usize| h.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    if h.get(0..4)? != b"RIFF" || h.get(8..12)? != b"WAVE" || h.get(12..16)? != b"fmt " {
        return None;
    }
    Some((u16_at(20)?, u16_at(22)?, u32_at(24)?, u16_at(34)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_16k_header_matches_the_sdk_bytes() {
        let hex: String = wav_header(WAVE_PCM, 16000, 16).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "524946460000000057415645666d74201000000001000100803e0000007d0000020010006461746100000000");
        assert_eq!(parse_wav_header(&wav_header(WAVE_PCM, 8000, 16)), Some((1, 1, 8000, 16)));
        assert_eq!(parse_wav_header(b"RIFX"), None);
    }

    #[test]
    fn binary_frames_round_trip_and_reject_short_headers() {
        let mut buf = BytesMut::new();
        write_binary(&mut buf, "audio", "123e4567e89b12d3a456426655440000", Some("audio/x-wav"), None, &[1, 2, 3]);
        let frame = buf.split().freeze();
        let declared = usize::from(u16::from_be_bytes([frame[0], frame[1]]));
        // Same layout as the spec's worked example: 126 header bytes with this request id.
        assert_eq!(declared, 126);
        let (h, body) = parse_binary(&frame).unwrap();
        assert_eq!(h.path, Some("audio"));
        assert_eq!(h.request_id, Some("123e4567e89b12d3a456426655440000"));
        assert_eq!(h.content_type, Some("audio/x-wav"));
        assert_eq!(body, [1, 2, 3]);
        assert_eq!(parse_binary(&[0, 200, b'P']), Err(FrameError::BadHeaderLength));
        assert_eq!(parse_binary(&[0]), Err(FrameError::BadHeaderLength));
    }

    #[test]
    fn text_frames_split_at_the_blank_line_case_insensitively() {
        let (h, body) =
            parse_text("x-requestid:ABC\r\ncontent-type:application/json; charset=utf-8\r\npath:turn.start\r\n\r\n{}")
                .unwrap();
        assert_eq!((h.path, h.request_id, body), (Some("turn.start"), Some("ABC"), "{}"));
        assert_eq!(parse_text("Path: turn.end\r\nX-RequestId: a\r\n").unwrap().0.path, Some("turn.end"));
        assert_eq!(parse_text("Path: x"), Err(FrameError::NoSeparator));
        let mut s = String::new();
        write_text(&mut s, "speech.config", "a".repeat(32).as_str(), Some("application/json"), "{}");
        assert!(s.starts_with("Path: speech.config\r\nX-RequestId: aaaa"));
        assert!(s.ends_with("Content-Type: application/json\r\n\r\n{}"));
        let ts = s.lines().find_map(|l| l.strip_prefix("X-Timestamp: ")).unwrap();
        assert_eq!(ts.len(), 24);
        assert!(ts.ends_with('Z') && &ts[10..11] == "T");
    }
}
