//! Twilio Media Streams as Twilio sends them: `connected`, `start` (µ-law 8 kHz), `media`,
//! `stop`; marks are echoed when their audio would have played and `clear` returns them at once.

use super::answer::{attr, field, form_body, pairs, read, unescape, Answered, Webhook, FROM};
use super::wire::{str_at, ulaw_payload, CallerWire, Received, UlawMedia, WireError};
use anyhow::Context;
use serde_json::{json, Value};
use std::fmt::Write;
use tokio_tungstenite::tungstenite::Message;

pub(crate) struct Twilio {
    call_sid: String,
    stream_sid: String,
    params: serde_json::Map<String, Value>,
    seq: u64,
    media: UlawMedia,
    /// The server's media, decoded here before it becomes PCM.
    inbound: Vec<u8>,
}

impl Twilio {
    pub fn new(agent: &str) -> Self {
        Self {
            call_sid: format!("CA{}", uuid::Uuid::new_v4().simple()),
            stream_sid: format!("MZ{}", uuid::Uuid::new_v4().simple()),
            params: super::wire::agent_params(agent),
            seq: 1,
            media: UlawMedia::default(),
            inbound: Vec::with_capacity(160),
        }
    }
}

impl CallerWire for Twilio {
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
        let (seq, sid) = (self.seq, &self.stream_sid);
        self.media.next(frame, |s, chunk| {
            let _ = write!(
                s,
                r#"{{"event":"media","sequenceNumber":"{}","streamSid":"{}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":""#,
                seq,
                sid,
                chunk,
                chunk * 20
            );
        })
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
            Some("media") => ulaw_payload(str_at(v, "/media/payload"), &mut self.inbound, pcm),
            Some("mark") => Received::Mark(str_at(v, "/mark/name").to_string()),
            Some("clear") => Received::Clear { ack_marks: true, reply: None },
            other => Received::Error(WireError::unknown_event(other)),
        }
    }
}

/// `--number`: post Twilio's signed answer webhook and read where the stream goes.
pub(crate) async fn answer(w: Webhook<'_>) -> anyhow::Result<Answered> {
    let Webhook { http, base, cred, to, call } = w;
    let (sid, token) = (field(cred, "accountSid")?, field(cred, "authToken")?);
    let url = format!("{base}/twilio/voice");
    let params = pairs(&[("AccountSid", sid), ("CallSid", call), ("From", FROM), ("To", to), ("Direction", "inbound")]);
    let sig = gwauth::twilio::signature(token, &url, &params);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", sig)
        .body(form_body(&params))
        .send()
        .await?;
    let doc = read(resp, "Twilio").await?;
    let stream = unescape(attr(&doc, "url").context("the TwiML has no <Stream url>")?);
    let vt = doc.split("name=\"vt\" value=\"").nth(1).and_then(|r| r.split('"').next()).context("no vt parameter")?;
    // Twilio signs the upgrade: the stream URL as written, no parameters.
    let upgrade_sig = gwauth::twilio::signature(token, &stream, &[]);
    Ok(Answered {
        url: stream,
        headers: vec![("X-Twilio-Signature".into(), upgrade_sig)],
        params: pairs(&[("vt", vt)]),
    })
}
