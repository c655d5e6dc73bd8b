//! Telnyx Media Streaming in bidirectional `rtp` mode, as Telnyx sends it: `connected`, `start`
//! with `media_format` PCMU 8 kHz and the call's `call_control_id` (the id the server registers
//! the call under), `media` with base64 RTP payloads, `stop`. Marks are echoed when their audio
//! would have played; `clear` returns queued marks at once (protocols/telephony.md A2).

use super::wire::{b64_frame, str_at, ulaw_payload, CallerWire, Received, WireError};
use serde_json::{json, Value};
use std::fmt::Write;
use tokio_tungstenite::tungstenite::Message;

pub(super) struct Telnyx {
    call_control_id: String,
    stream_id: String,
    user_id: String,
    params: serde_json::Map<String, Value>,
    seq: u64,
    chunk: u64,
    ulaw: Vec<u8>,
    prefix: String,
}

impl Telnyx {
    pub fn new(agent: &str) -> Self {
        Self {
            call_control_id: format!("v3:{}", uuid::Uuid::new_v4().simple()),
            stream_id: uuid::Uuid::new_v4().to_string(),
            user_id: uuid::Uuid::new_v4().to_string(),
            params: super::wire::agent_params(agent),
            seq: 0,
            chunk: 0,
            ulaw: Vec::with_capacity(160),
            prefix: String::with_capacity(160),
        }
    }

    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }
}

impl CallerWire for Telnyx {
    fn path(&self) -> &'static str {
        "/telnyx/stream"
    }

    fn rate(&self) -> u32 {
        8000
    }

    fn call_id(&self) -> &str {
        &self.call_control_id
    }

    fn add_param(&mut self, key: &str, value: &str) {
        self.params.insert(key.into(), Value::String(value.into()));
    }

    fn opening(&mut self) -> Vec<Message> {
        let start = json!({"event": "start", "sequence_number": self.next_seq(), "stream_id": self.stream_id,
            "start": {"user_id": self.user_id, "call_control_id": self.call_control_id,
                "call_session_id": uuid::Uuid::new_v4().to_string(), "tags": [],
                "custom_parameters": self.params,
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}});
        vec![
            Message::text(json!({"event": "connected", "version": "1.0.0"}).to_string()),
            Message::text(start.to_string()),
        ]
    }

    fn media(&mut self, frame: &[i16]) -> Message {
        self.seq += 1;
        self.chunk += 1;
        media::g711::encode_ulaw_into(frame, &mut self.ulaw);
        self.prefix.clear();
        let _ = write!(
            self.prefix,
            r#"{{"event":"media","sequence_number":"{}","stream_id":"{}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":""#,
            self.seq,
            self.stream_id,
            self.chunk,
            (self.chunk - 1) * 20
        );
        Message::text(b64_frame(&self.prefix, &self.ulaw, r#""}}"#))
    }

    fn stop(&mut self) -> Message {
        let stop = json!({"event": "stop", "sequence_number": self.next_seq(), "stream_id": self.stream_id,
            "stop": {"user_id": self.user_id, "call_control_id": self.call_control_id}});
        Message::text(stop.to_string())
    }

    fn mark_played(&mut self, name: &str) -> Option<Message> {
        let m = json!({"event": "mark", "sequence_number": self.next_seq(), "stream_id": self.stream_id,
            "mark": {"name": name}});
        Some(Message::text(m.to_string()))
    }

    fn text(&mut self, v: &Value, pcm: &mut Vec<i16>) -> Received {
        match v.get("event").and_then(Value::as_str) {
            Some("media") => ulaw_payload(str_at(v, "/media/payload"), &mut self.ulaw, pcm),
            Some("mark") => Received::Mark(str_at(v, "/mark/name").to_string()),
            Some("clear") => Received::Clear { ack_marks: true, reply: None },
            other => Received::Error(WireError::unknown_event(other)),
        }
    }
}
