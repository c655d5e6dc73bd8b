//! Incremental Server-Sent Events parser (WHATWG "event stream interpretation").
//!
//! HTTP chunks split lines and even UTF-8 characters anywhere, so bytes are buffered until a
//! line ends (`\n`, `\r\n` or `\r`), and an event is dispatched at a blank line. Comment lines
//! (`:` keep-alives from DeepSeek or OpenRouter) are skipped. Provider-independent: Anthropic's
//! named events use the `event` field.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, when the provider names its events.
    pub event: Option<String>,
    /// All `data:` lines of the event joined with `\n`.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    #[error("an SSE line is longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("an SSE line is not valid UTF-8")]
    Utf8,
}

/// Bounds memory if a peer never sends a newline.
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next chunk belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; `on_event` gets every event completed by them, in order.
    pub(crate) fn push(&mut self, chunk: &[u8], mut on_event: impl FnMut(SseEvent)) -> Result<(), SseError> {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.append(&rest[..end])?;
            let was_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if was_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.end_line(&mut on_event)?;
        }
        self.append(rest)
    }

    /// The body ended: a last line without newline and a last event without blank line are
    /// still delivered (lenient, as providers that close without a trailing blank line exist).
    pub(crate) fn finish(&mut self, mut on_event: impl FnMut(SseEvent)) -> Result<(), SseError> {
        if !self.line.is_empty() {
            self.end_line(&mut on_event)?;
        }
        self.dispatch(&mut on_event);
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > MAX_LINE {
            return Err(SseError::LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(SseEvent)) -> Result<(), SseError> {
        let line = std::str::from_utf8(&self.line).map_err(|_| SseError::Utf8)?;
        if line.is_empty() {
            self.dispatch(on_event);
        } else if !line.starts_with(':') {
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    self.has_data = true;
                }
                "event" => self.event = Some(value.to_string()),
                // `id` and `retry` matter only for browser reconnection.
                _ => {}
            }
        }
        self.line.clear();
        Ok(())
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent)) {
        if self.has_data {
            on_event(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data) });
        }
        self.event = None;
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT_STREAM: &str = concat!(
        ": OPENROUTER PROCESSING\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" wörld\"}}]}\r\n\r\n",
        "event: message_stop\r",
        "data: {\"type\":\"message_stop\"}\r\r",
        "data: first\ndata:second\n\n",
        "data: [DONE]\n\n",
    );

    fn expected() -> Vec<SseEvent> {
        let ev =
            |event: Option<&str>, data: &str| SseEvent { event: event.map(str::to_string), data: data.to_string() };
        vec![
            ev(None, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo\"}}]}"),
            ev(None, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" wörld\"}}]}"),
            ev(Some("message_stop"), "{\"type\":\"message_stop\"}"),
            ev(None, "first\nsecond"),
            ev(None, "[DONE]"),
        ]
    }

    fn parse(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            p.push(piece, |e| out.push(e)).unwrap();
        }
        p.finish(|e| out.push(e)).unwrap();
        out
    }

    #[test]
    fn whole_stream() {
        assert_eq!(parse(&[TEXT_STREAM.as_bytes()]), expected());
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let bytes = TEXT_STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(parse(&[a, b]), expected(), "split at byte {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let pieces: Vec<&[u8]> = TEXT_STREAM.as_bytes().chunks(1).collect();
        assert_eq!(parse(&pieces), expected());
    }

    #[test]
    fn unterminated_last_event_is_delivered_at_end() {
        let out = parse(&[b"data: {\"a\":1}"]);
        assert_eq!(out, vec![SseEvent { event: None, data: "{\"a\":1}".into() }]);
    }

    #[test]
    fn comments_and_blank_lines_alone_yield_nothing() {
        assert!(parse(&[b": keep-alive\n\n\n: again\n\n"]).is_empty());
    }

    #[test]
    fn invalid_utf8_and_huge_lines_are_errors() {
        let mut p = SseParser::new();
        assert_eq!(p.push(b"data: \xff\xfe\n", |_| {}), Err(SseError::Utf8));
        let mut p = SseParser::new();
        let huge = vec![b'a'; MAX_LINE + 1];
        assert_eq!(p.push(&huge, |_| {}), Err(SseError::LineTooLong));
    }
}
