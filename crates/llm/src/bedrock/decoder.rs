//! The event-stream framing of a ConverseStream body and its events as [`LlmEvent`]s.
//!
//! The turn ends at `metadata` (after `messageStop`), which carries the usage: a body that ends
//! without it was cut, whatever `messageStop` said. Exception messages end the stream with the
//! error their HTTP twin maps to.

use super::wire::{BlockDelta, BlockStart, BlockStop, MessageStop, Metadata, Usage};
use crate::error::scrub;
use crate::pump::{Decode, Framer, Step};
use crate::sse::SseEvent;
use crate::{LlmError, LlmEvent, ToolCall};
use aws::eventstream::{Message, MessageDecoder};

/// Cuts the body into `(:event-type, JSON payload)` pairs.
#[derive(Debug, Default)]
pub(crate) struct EventStream {
    frames: MessageDecoder,
}

impl EventStream {
    fn drain(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        while let Some(msg) =
            self.frames.next_message().map_err(|e| LlmError::Stream(format!("bad event-stream frame: {e}")))?
        {
            match msg.message_type() {
                Some("event") => {
                    let data = std::str::from_utf8(&msg.payload)
                        .map_err(|_| LlmError::Stream("an event payload is not UTF-8".into()))?;
                    out.push(SseEvent { event: msg.event_type().map(str::to_string), data: data.to_string() });
                }
                Some("exception") => return Err(exception(&msg)),
                Some("error") => {
                    let code = msg.header_str(":error-code").unwrap_or("error");
                    let text = msg.header_str(":error-message").unwrap_or("the provider sent an error");
                    return Err(LlmError::Stream(scrub(&format!("{code}: {text}"))));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Framer for EventStream {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        self.frames.push(chunk);
        self.drain(out)
    }

    fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        self.drain(out)?;
        match self.frames.buffered() {
            0 => Ok(()),
            n => Err(LlmError::Stream(format!("the stream ended inside an event-stream message ({n} bytes)"))),
        }
    }
}

/// A modeled mid-stream exception, as its HTTP status would map.
fn exception(msg: &Message) -> LlmError {
    let payload: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap_or_default();
    let text = payload.get("message").or(payload.get("Message")).and_then(serde_json::Value::as_str);
    let kind = msg.exception_type().unwrap_or("exception");
    match kind {
        "throttlingException" => LlmError::RateLimited { retry_after_ms: None },
        "internalServerException" => LlmError::Server { status: 500 },
        "serviceUnavailableException" => LlmError::Server { status: 503 },
        "validationException" => LlmError::from_status(400, None, text),
        _ => LlmError::Stream(scrub(&format!("{kind}: {}", text.unwrap_or("no message")))),
    }
}

#[derive(Debug)]
pub(crate) struct Decoder {
    /// Tool uses still streaming, by content block index.
    calls: Vec<(u32, ToolCall)>,
    stop_reason: Option<String>,
    /// `metadata` arrived: the turn is complete.
    finished: bool,
    usage: Option<Usage>,
    input_estimate: u64,
    output_chars: usize,
}

impl Decoder {
    pub(crate) fn new(input_estimate: u64) -> Self {
        Self { calls: Vec::new(), stop_reason: None, finished: false, usage: None, input_estimate, output_chars: 0 }
    }
}

fn parse<'a, T: serde::Deserialize<'a>>(event: &str, data: &'a str) -> Result<T, LlmError> {
    serde_json::from_str(data).map_err(|e| LlmError::Stream(format!("malformed {event} event: {e}")))
}

impl Decode for Decoder {
    fn finish_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref().filter(|_| self.finished)
    }

    fn data(&mut self, data: &str, out: &mut Vec<LlmEvent>) -> Result<Step, LlmError> {
        self.event(None, data, out)
    }

    fn event(&mut self, event: Option<&str>, data: &str, out: &mut Vec<LlmEvent>) -> Result<Step, LlmError> {
        match event.unwrap_or_default() {
            "contentBlockStart" => {
                let start: BlockStart = parse("contentBlockStart", data)?;
                if let Some(tool) = start.start.and_then(|s| s.tool_use) {
                    let call = ToolCall::new(tool.tool_use_id, tool.name, String::new());
                    self.calls.push((start.content_block_index, call));
                }
            }
            "contentBlockDelta" => {
                let d: BlockDelta = parse("contentBlockDelta", data)?;
                if let Some(text) = d.delta.text.filter(|t| !t.is_empty()) {
                    self.output_chars += text.chars().count();
                    out.push(LlmEvent::Token(text));
                }
                if let Some(tool) = d.delta.tool_use {
                    self.output_chars += tool.input.chars().count();
                    if let Some((_, call)) = self.calls.iter_mut().find(|(i, _)| *i == d.content_block_index) {
                        call.arguments.push_str(&tool.input);
                    }
                }
            }
            "contentBlockStop" => {
                let stop: BlockStop = parse("contentBlockStop", data)?;
                if let Some(at) = self.calls.iter().position(|(i, _)| *i == stop.content_block_index) {
                    let mut call = self.calls.remove(at).1;
                    // A tool without input streams no JSON at all.
                    if call.arguments.trim().is_empty() {
                        call.arguments = "{}".into();
                    }
                    out.push(LlmEvent::ToolCall(call));
                }
            }
            "messageStop" => self.stop_reason = parse::<MessageStop>("messageStop", data)?.stop_reason,
            "metadata" => {
                self.usage = parse::<Metadata>("metadata", data)?.usage;
                self.finished = true;
                return Ok(Step::Done);
            }
            // messageStart and anything newer.
            _ => {}
        }
        Ok(Step::Continue)
    }

    fn close(&mut self, _completed: bool, out: &mut Vec<LlmEvent>) {
        if !self.calls.is_empty() {
            tracing::warn!(calls = self.calls.len(), "dropping tool uses the stream never finished");
            self.calls.clear();
        }
        let reported = self.usage.as_ref().map(|u| (u.input_tokens, u.output_tokens));
        out.push(crate::pump::usage_or_estimate(reported, self.input_estimate, self.output_chars));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: &'static str, json: &str) -> Vec<u8> {
        Message::event(event, "application/json", json.to_string().into_bytes()).encode().unwrap()
    }

    /// Frames split at every byte still decode; then the events map as A4 describes.
    fn run(body: &[u8]) -> (Vec<LlmEvent>, Result<Step, LlmError>, Option<String>) {
        let mut framer = EventStream::default();
        let mut d = Decoder::new(10);
        let (mut payloads, mut out) = (Vec::new(), Vec::new());
        let framing = body
            .chunks(1)
            .try_for_each(|byte| framer.push(byte, &mut payloads))
            .and_then(|()| framer.finish(&mut payloads));
        let mut end = Ok(Step::Continue);
        for p in payloads {
            end = d.event(p.event.as_deref(), &p.data, &mut out);
            if !matches!(end, Ok(Step::Continue)) {
                break;
            }
        }
        if let (Ok(Step::Continue), Err(e)) = (&end, framing) {
            end = Err(e);
        }
        d.close(matches!(end, Ok(Step::Done)), &mut out);
        (out, end, d.finish_reason().map(str::to_string))
    }

    /// The spec's worked frame, byte for byte.
    #[test]
    fn spec_frame_decodes() {
        let hex = "0000009400000057b4ab9aee0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a224869227d7d1f944657";
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let mut out = Vec::new();
        EventStream::default().push(&bytes, &mut out).unwrap();
        assert_eq!(
            out,
            vec![SseEvent {
                event: Some("contentBlockDelta".into()),
                data: r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#.into()
            }]
        );
    }

    #[test]
    fn text_then_tool_use_then_usage() {
        let body = [
            frame("messageStart", r#"{"role":"assistant","p":"abcdef"}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Let me check."}}"#),
            frame("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            frame("contentBlockStart", r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_abc","name":"get_weather"}}}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}}}"#),
            frame("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Paris\"}"}}}"#),
            frame("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            frame("messageStop", r#"{"stopReason":"tool_use"}"#),
            frame("metadata", r#"{"usage":{"inputTokens":25,"outputTokens":12,"totalTokens":37,"cacheReadInputTokens":0},"metrics":{"latencyMs":412}}"#),
        ]
        .concat();
        let (out, end, reason) = run(&body);
        assert_eq!(end, Ok(Step::Done));
        assert_eq!(reason.as_deref(), Some("tool_use"));
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("Let me check.".into()),
                LlmEvent::ToolCall(ToolCall::new("tooluse_abc", "get_weather", "{\"city\":\"Paris\"}")),
                LlmEvent::Usage { input_tokens: 25, output_tokens: 12, estimated: false },
            ]
        );
    }

    #[test]
    fn exception_after_text_keeps_the_text_and_estimates() {
        let body = [
            frame("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hello"}}"#),
            Message::exception("throttlingException", &br#"{"message":"Too many tokens"}"#[..]).encode().unwrap(),
        ]
        .concat();
        let (out, end, reason) = run(&body);
        assert_eq!(end, Err(LlmError::RateLimited { retry_after_ms: None }));
        assert_eq!(reason, None);
        assert_eq!(
            out,
            vec![
                LlmEvent::Token("Hello".into()),
                LlmEvent::Usage { input_tokens: 10, output_tokens: 2, estimated: true }
            ]
        );
        let stream_error =
            Message::exception("modelStreamErrorException", &br#"{"message":"bad"}"#[..]).encode().unwrap();
        assert_eq!(run(&stream_error).1, Err(LlmError::Stream("modelStreamErrorException: bad".into())));
    }

    /// `messageStop` without `metadata`: no finish, so the pump reports a cut stream.
    #[test]
    fn missing_metadata_is_not_a_finish_and_corruption_is_an_error() {
        let body = frame("messageStop", r#"{"stopReason":"end_turn"}"#);
        let (_, end, reason) = run(&body);
        assert_eq!((end, reason), (Ok(Step::Continue), None));
        let mut bad = frame("messageStart", r#"{"role":"assistant"}"#);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(run(&bad).1, Err(LlmError::Stream(_))));
        assert!(matches!(run(&bad[..20]).1, Err(LlmError::Stream(_))), "a cut frame");
    }
}
