//! The client protocol (docs/client-protocol.md): JSON control frames with `type`, binary PCM16
//! at 16 kHz both ways, and the session's events in-band.

use super::wire::{CallerWire, Received};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const RATE: u32 = 16000;

pub(crate) struct Client {
    call_id: String,
    params: serde_json::Map<String, Value>,
    raw: Vec<u8>,
}

impl Client {
    pub fn new(agent: &str) -> Self {
        Self {
            call_id: format!("CA{}", uuid::Uuid::new_v4().simple()),
            params: super::wire::agent_params(agent),
            raw: Vec::with_capacity(640),
        }
    }
}

impl CallerWire for Client {
    fn rate(&self) -> u32 {
        RATE
    }

    fn call_id(&self) -> &str {
        &self.call_id
    }

    fn in_band_events(&self) -> bool {
        true
    }

    fn add_param(&mut self, key: &str, value: &str) {
        self.params.insert(key.into(), Value::String(value.into()));
    }

    fn opening(&mut self) -> Vec<Message> {
        let start = json!({"type": "start", "call_id": self.call_id, "params": self.params,
            "audio": {"encoding": "pcm16", "sample_rate": RATE}});
        vec![Message::text(start.to_string())]
    }

    fn media(&mut self, frame: &[i16]) -> Message {
        media::l16::encode_le_into(frame, &mut self.raw);
        Message::binary(self.raw.clone())
    }

    fn stop(&mut self) -> Message {
        Message::text(json!({"type": "stop"}).to_string())
    }

    fn mark_played(&mut self, _name: &str) -> Option<Message> {
        None
    }

    fn text(&mut self, v: &Value, _pcm: &mut Vec<i16>) -> Received {
        match v.get("type").and_then(Value::as_str) {
            Some("clear") => Received::Clear { ack_marks: false, reply: None },
            Some("mark") => Received::TurnEnd,
            _ => Received::Event(v.clone()),
        }
    }

    fn binary(&mut self, b: &[u8], pcm: &mut Vec<i16>) -> Received {
        match media::l16::decode_le_into(b, pcm) {
            Ok(()) => Received::Audio,
            Err(_) => Received::Ignore,
        }
    }
}
