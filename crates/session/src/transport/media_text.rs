//! Outbound JSON media messages (Twilio, Telnyx, Plivo) cut from one reused buffer.

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::BytesMut;

/// Writes a carrier's JSON media messages, `prefix` + base64(payload) + `suffix`, into one
/// reused buffer: each message is a view of it, and once the socket has written a message its
/// space is taken back, so an outbound frame costs no allocation (the payload is the only
/// variable part of a carrier's outbound media frame).
pub(crate) struct MediaText {
    buf: BytesMut,
}

/// Room for a dozen or so frames (a 20 ms µ-law frame is about 250 bytes of JSON).
const MEDIA_TEXT_ROOM: usize = 4096;

impl MediaText {
    pub(crate) fn new() -> Self {
        Self { buf: BytesMut::with_capacity(MEDIA_TEXT_ROOM) }
    }

    pub(crate) fn message(&mut self, prefix: &str, raw: &[u8], suffix: &str) -> Message {
        let b64_len = raw.len().div_ceil(3) * 4;
        // When the room runs out, this takes the whole buffer back if the messages cut from it
        // have been written and dropped (they are, one wake-up later), and allocates only if not.
        self.buf.reserve(prefix.len() + b64_len + suffix.len());
        self.buf.extend_from_slice(prefix.as_bytes());
        let start = self.buf.len();
        self.buf.resize(start + b64_len, 0);
        let out = base64_simd::Out::from_slice(&mut self.buf[start..]);
        let written = base64_simd::STANDARD.encode(raw, out).len();
        self.buf.truncate(start + written);
        self.buf.extend_from_slice(suffix.as_bytes());
        match Utf8Bytes::try_from(self.buf.split().freeze()) {
            Ok(text) => Message::Text(text),
            // Unreachable (UTF-8 prefix and suffix, ASCII base64); kept as a typed fallback.
            Err(_) => Message::Text(String::new().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_messages_reuse_one_buffer_once_written() {
        let mut m = MediaText::new();
        let payload = [0xFFu8; 160];
        let first = m.message(r#"{"media":{"payload":""#, &payload, r#""}}"#);
        let Message::Text(text) = &first else { panic!("text") };
        let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
        let b64 = v["media"]["payload"].as_str().unwrap();
        use base64::Engine;
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), payload);
        let start = text.as_str().as_ptr();
        drop(first);
        // Messages alive together sit end to end in one buffer, not in allocations of their own.
        let texts: Vec<Utf8Bytes> = (0..8)
            .map(|_| match m.message("{", &payload, "}") {
                Message::Text(t) => t,
                _ => panic!("text"),
            })
            .collect();
        for w in texts.windows(2) {
            assert_eq!(w[1].as_str().as_ptr(), w[0].as_str().as_ptr().wrapping_add(w[0].len()), "contiguous");
        }
        drop(texts);
        // Once they are gone, writing goes back to the front of the same buffer when room runs out.
        let mut back_at_start = false;
        for _ in 0..32 {
            let Message::Text(t) = m.message("{", &payload, "}") else { panic!("text") };
            back_at_start |= t.as_str().as_ptr() == start;
        }
        assert!(back_at_start, "the buffer was never reused");
    }
}
