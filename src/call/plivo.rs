//! Plivo Audio Streams as Plivo sends them: `start` with `mediaFormat` audio/x-mulaw 8 kHz, the
//! call's `callId` (the id the server registers the call under) and `extra_headers` carrying the
//! agent, then `media`. Plivo has no stop event: the call ends with a close frame. A
//! `checkpoint` is answered with `playedStream` once its audio would have played; `clearAudio`
//! drops pending checkpoints (they never played) and is answered with `clearedAudio`
//! (protocols/telephony.md A4).

use super::answer::{attr, field, form_body, pairs, read, unescape, Answered, Webhook, FROM};
use super::wire::{str_at, ulaw_payload, CallerWire, Received, UlawMedia, WireError};
use anyhow::Context;
use serde_json::{json, Value};
use std::fmt::Write;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message;

pub(crate) struct Plivo {
    call_id: String,
    stream_id: String,
    extra_headers: String,
    /// `extra_headers` as a JSON string literal, for the media frames that repeat it.
    extra_headers_json: String,
    seq: u64,
    media: UlawMedia,
    /// The server's media, decoded here before it becomes PCM.
    inbound: Vec<u8>,
    /// Unix ms of the first frame; `media.timestamp` counts from it.
    t0_ms: u64,
}

impl Plivo {
    pub fn new(agent: &str) -> Self {
        let t0_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let extra_headers = if agent == "default" { String::new() } else { format!("agent={agent}") };
        Self {
            call_id: uuid::Uuid::new_v4().to_string(),
            stream_id: uuid::Uuid::new_v4().to_string(),
            // Plivo's extraHeaders are `k=v` pairs separated by `;`.
            extra_headers_json: Value::String(extra_headers.clone()).to_string(),
            extra_headers,
            seq: 0,
            media: UlawMedia::default(),
            inbound: Vec::with_capacity(160),
            t0_ms,
        }
    }
}

impl CallerWire for Plivo {
    fn call_id(&self) -> &str {
        &self.call_id
    }

    fn add_param(&mut self, key: &str, value: &str) {
        if !self.extra_headers.is_empty() {
            self.extra_headers.push(';');
        }
        self.extra_headers.push_str(&format!("{key}={value}"));
        self.extra_headers_json = Value::String(self.extra_headers.clone()).to_string();
    }

    fn opening(&mut self) -> Vec<Message> {
        self.seq += 1;
        let start = json!({"event": "start", "sequenceNumber": self.seq,
            "start": {"callId": self.call_id, "streamId": self.stream_id,
                "accountId": format!("MA{}", &uuid::Uuid::new_v4().simple().to_string()[..18]),
                "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}},
            "extra_headers": self.extra_headers});
        vec![Message::text(start.to_string())]
    }

    fn media(&mut self, frame: &[i16]) -> Message {
        self.seq += 1;
        let (seq, id, headers, t0) = (self.seq, &self.stream_id, &self.extra_headers_json, self.t0_ms);
        self.media.next(frame, |s, chunk| {
            let _ = write!(
                s,
                r#"{{"event":"media","sequenceNumber":{},"streamId":"{}","extra_headers":{},"media":{{"track":"inbound","timestamp":"{}","chunk":{},"payload":""#,
                seq,
                id,
                headers,
                t0 + (chunk - 1) * 20,
                chunk
            );
        })
    }

    fn stop(&mut self) -> Message {
        Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))
    }

    fn mark_played(&mut self, name: &str) -> Option<Message> {
        self.seq += 1;
        let m = json!({"event": "playedStream", "sequenceNumber": self.seq, "streamId": self.stream_id, "name": name});
        Some(Message::text(m.to_string()))
    }

    fn text(&mut self, v: &Value, pcm: &mut Vec<i16>) -> Received {
        match v.get("event").and_then(Value::as_str) {
            Some("playAudio") => {
                let (ct, rate) = (str_at(v, "/media/contentType"), v.pointer("/media/sampleRate"));
                if ct != "audio/x-mulaw" || rate.and_then(Value::as_u64) != Some(8000) {
                    return Received::Error(WireError::new(
                        "unsupported_format",
                        format!("server played {ct} at {} Hz on a µ-law 8 kHz stream", rate.unwrap_or(&Value::Null)),
                    ));
                }
                ulaw_payload(str_at(v, "/media/payload"), &mut self.inbound, pcm)
            }
            Some("checkpoint") => Received::Mark(str_at(v, "/name").to_string()),
            Some("clearAudio") => {
                self.seq += 1;
                let reply = json!({"event": "clearedAudio", "sequenceNumber": self.seq, "streamId": self.stream_id});
                Received::Clear { ack_marks: false, reply: Some(Message::text(reply.to_string())) }
            }
            other => Received::Error(WireError::unknown_event(other)),
        }
    }
}

/// `--number`: post Plivo's signed answer webhook and read where the stream goes.
pub(crate) async fn answer(w: Webhook<'_>) -> anyhow::Result<Answered> {
    let Webhook { http, base, cred, to, call } = w;
    let token = field(cred, "authToken")?;
    let url = format!("{base}/plivo/answer");
    let digits = to.trim_start_matches('+');
    let params =
        pairs(&[("CallUUID", call), ("From", FROM.trim_start_matches('+')), ("To", digits), ("Direction", "inbound")]);
    let nonce = uuid::Uuid::new_v4().as_u128().to_string();
    let sig = gwauth::plivo::signature_v3(token, "POST", &url, &params, &nonce);
    let resp = http
        .post(&url)
        .header("X-Plivo-Signature-V3", sig)
        .header("X-Plivo-Signature-V3-Nonce", nonce)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&params))
        .send()
        .await?;
    let doc = read(resp, "Plivo").await?;
    let headers = attr(&doc, "extraHeaders").context("the answer XML has no extraHeaders")?;
    let vt = headers.split([',', ';']).find_map(|kv| kv.strip_prefix("vt=")).context("no vt in extraHeaders")?;
    let stream = doc.split("<Stream").nth(1).and_then(|r| r.split('>').nth(1)).and_then(|r| r.split('<').next());
    let stream = unescape(stream.context("the answer XML has no <Stream> URL")?.trim());
    Ok(Answered { url: stream, headers: vec![], params: pairs(&[("vt", vt)]) })
}
