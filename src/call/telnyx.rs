//! Telnyx Media Streaming in bidirectional `rtp` mode, as Telnyx sends it: `connected`, `start`
//! with `media_format` PCMU 8 kHz and the call's `call_control_id` (the id the server registers
//! the call under), `media` with base64 RTP payloads, `stop`. Marks are echoed when their audio
//! would have played; `clear` returns queued marks at once (protocols/telephony.md A2).

use super::answer::{attr, field, form_body, pairs, read, unescape, Answered, Webhook, FROM};
use super::wire::{str_at, ulaw_payload, CallerWire, Received, UlawMedia, WireError};
use anyhow::Context;
use base64::Engine;
use serde_json::{json, Value};
use std::fmt::Write;
use tokio_tungstenite::tungstenite::Message;

pub(crate) struct Telnyx {
    call_control_id: String,
    stream_id: String,
    user_id: String,
    params: serde_json::Map<String, Value>,
    seq: u64,
    media: UlawMedia,
    /// The server's media, decoded here before it becomes PCM.
    inbound: Vec<u8>,
}

impl Telnyx {
    pub fn new(agent: &str) -> Self {
        Self {
            call_control_id: format!("v3:{}", uuid::Uuid::new_v4().simple()),
            stream_id: uuid::Uuid::new_v4().to_string(),
            user_id: uuid::Uuid::new_v4().to_string(),
            params: super::wire::agent_params(agent),
            seq: 0,
            media: UlawMedia::default(),
            inbound: Vec::with_capacity(160),
        }
    }

    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }
}

impl CallerWire for Telnyx {
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
        let (seq, id) = (self.seq, &self.stream_id);
        self.media.next(frame, |s, chunk| {
            let _ = write!(
                s,
                r#"{{"event":"media","sequence_number":"{}","stream_id":"{}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":""#,
                seq,
                id,
                chunk,
                (chunk - 1) * 20
            );
        })
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
            Some("media") => ulaw_payload(str_at(v, "/media/payload"), &mut self.inbound, pcm),
            Some("mark") => Received::Mark(str_at(v, "/mark/name").to_string()),
            Some("clear") => Received::Clear { ack_marks: true, reply: None },
            other => Received::Error(WireError::unknown_event(other)),
        }
    }
}

/// `--number`: post Telnyx's signed answer webhook and read where the stream goes.
pub(crate) async fn answer(w: Webhook<'_>) -> anyhow::Result<Answered> {
    let Webhook { http, base, cred, to, call } = w;
    let seed = base64::engine::general_purpose::STANDARD
        .decode(field(cred, "signingKey")?)
        .context("signingKey is not base64")?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| anyhow::anyhow!("signingKey must be 32 bytes"))?;
    let url = format!("{base}/telnyx/texml");
    let body = form_body(&pairs(&[("AccountSid", "AC-telnyx"), ("CallSid", call), ("From", FROM), ("To", to)]));
    let ts = (billing::store::now_ms() / 1000).to_string();
    let sig = gwauth::telnyx::sign(&seed, &ts, body.as_bytes());
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("telnyx-timestamp", ts)
        .header("telnyx-signature-ed25519", sig)
        .body(body)
        .send()
        .await?;
    let doc = read(resp, "Telnyx").await?;
    let stream = unescape(attr(&doc, "url").context("the TeXML has no <Stream url>")?);
    let vt = doc.split("name=\"vt\" value=\"").nth(1).and_then(|r| r.split('"').next()).context("no vt parameter")?;
    Ok(Answered { url: stream, headers: vec![], params: pairs(&[("vt", vt)]) })
}
