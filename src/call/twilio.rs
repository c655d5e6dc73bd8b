//! Twilio Media Streams as Twilio sends them: `connected`, `start` (µ-law 8 kHz), `media`,
//! `stop`; marks are echoed when their audio would have played and `clear` returns them at once.

use super::wire::{b64_frame, str_at, ulaw_payload, CallerWire, Received, WireError};
use serde_json::{json, Value};
use std::fmt::Write;
use tokio_tungstenite::tungstenite::Message;

pub(super) struct Twilio {
    call_sid: String,
    stream_sid: String,
    params: serde_json::Map<String, Value>,
    seq: u64,
    chunk: u64,
    ulaw: Vec<u8>,
    prefix: String,
}

impl Twilio {
    pub fn new(agent: &str) -> Self {
        Self {
            call_sid: format!("CA{}", uuid::Uuid::new_v4().simple()),
            stream_sid: format!("MZ{}", uuid::Uuid::new_v4().simple()),
            params: super::wire::agent_params(agent),
            seq: 1,
            chunk: 0,
            ulaw: Vec::with_capacity(160),
            prefix: String::with_capacity(160),
        }
    }
}

impl CallerWire for Twilio {
    fn path(&self) -> &'static str {
        "/twilio/stream"
    }

    fn rate(&self) -> u32 {
        8000
    }

    fn call_id(&self) -> &str {
        &self.call_sid
    }

    fn add_param(&mut self, key: &str, value: &str) {
        self.params.insert(key.into(), Value::String(value.into()));
    }

    fn opening(&mut self) -> Vec<Message> {
        let start = json!({"event": "start", "sequenceNumber": self.seq.to_string(), "streamSid": self.stream_sid,
            "start": {"streamSid": self.stream_sid, "accountSid": format!("AC{}", uuid::Uuid::new_v4().simple()),
                "callSid": self.call_sid, "tracks": ["inbound"], "customParameters": self.params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}});
        vec![
            Message::text(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()),
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
            r#"{{"event":"media","sequenceNumber":"{}","streamSid":"{}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":""#,
            self.seq,
            self.stream_sid,
            self.chunk,
            self.chunk * 20
        );
        Message::text(b64_frame(&self.prefix, &self.ulaw, r#""}}"#))
    }

    fn stop(&mut self) -> Message {
        Message::text(
            json!({"event": "stop", "sequenceNumber": (self.seq + 1).to_string(), "streamSid": self.stream_sid,
                "stop": {"callSid": self.call_sid}})
            .to_string(),
        )
    }

    fn mark_played(&mut self, name: &str) -> Option<Message> {
        Some(Message::text(json!({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}).to_string()))
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
