//! The Vonage Voice API websocket as Vonage sends it: a `websocket:connected` header with
//! `content-type: audio/l16;rate=16000` and the NCCO headers (the call's `call_uuid`, the id the
//! server registers the call under, and the agent), then binary 20 ms L16 little-endian frames.
//! Vonage has no stop event: the call ends with a close frame. A `notify` is answered with
//! `websocket:notify` carrying its payload once its audio would have played; `{"action":"clear"}`
//! is answered with `websocket:cleared` (protocols/telephony.md A3).

use super::answer::{field, pairs, read, Answered, Webhook, FROM};
use super::wire::{CallerWire, Received, WireError};
use anyhow::Context;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message;

const RATE: u32 = 16000;

pub(crate) struct Vonage {
    call_uuid: String,
    params: serde_json::Map<String, Value>,
    raw: Vec<u8>,
}

impl Vonage {
    pub fn new(agent: &str) -> Self {
        Self {
            call_uuid: uuid::Uuid::new_v4().to_string(),
            params: super::wire::agent_params(agent),
            raw: Vec::with_capacity(640),
        }
    }
}

impl CallerWire for Vonage {
    fn rate(&self) -> u32 {
        RATE
    }

    fn call_id(&self) -> &str {
        &self.call_uuid
    }

    fn add_param(&mut self, key: &str, value: &str) {
        self.params.insert(key.into(), Value::String(value.into()));
    }

    fn opening(&mut self) -> Vec<Message> {
        let mut header = json!({"event": "websocket:connected", "content-type": format!("audio/l16;rate={RATE}"),
            "call_uuid": self.call_uuid});
        if let Some(h) = header.as_object_mut() {
            h.extend(self.params.clone());
        }
        vec![Message::text(header.to_string())]
    }

    fn media(&mut self, frame: &[i16]) -> Message {
        media::l16::encode_le_into(frame, &mut self.raw);
        Message::binary(self.raw.clone())
    }

    fn stop(&mut self) -> Message {
        Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))
    }

    fn mark_played(&mut self, name: &str) -> Option<Message> {
        Some(Message::text(json!({"event": "websocket:notify", "payload": {"name": name}}).to_string()))
    }

    fn text(&mut self, v: &Value, _pcm: &mut Vec<i16>) -> Received {
        match v.get("action").and_then(Value::as_str) {
            Some("notify") => match v.pointer("/payload/name").and_then(Value::as_str) {
                Some(name) => Received::Mark(name.to_string()),
                None => Received::Error(WireError::new("bad_notify", "server sent a notify without payload.name")),
            },
            Some("clear") => Received::Clear {
                ack_marks: false,
                reply: Some(Message::text(json!({"event": "websocket:cleared"}).to_string())),
            },
            other => Received::Error(WireError {
                code: "unknown_action",
                message: format!("{other:?}"),
                human: format!("server sent unknown action {other:?}"),
            }),
        }
    }

    fn binary(&mut self, b: &[u8], pcm: &mut Vec<i16>) -> Received {
        match media::l16::decode_le_into(b, pcm) {
            Ok(()) => Received::Audio,
            Err(e) => Received::Error(WireError::new("bad_audio", format!("server sent {e}"))),
        }
    }
}

/// `--number`: post Vonage's signed answer webhook and read where the stream goes.
pub(crate) async fn answer(w: Webhook<'_>) -> anyhow::Result<Answered> {
    let Webhook { http, base, cred, to, call } = w;
    let (app, secret) = (field(cred, "applicationId")?, field(cred, "signatureSecret")?);
    let now = billing::store::now_ms() / 1000;
    let claims = json!({"iat": now, "jti": uuid::Uuid::new_v4().to_string(), "application_id": app});
    let jwt = gwauth::vonage::sign_webhook(secret, &claims);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("to", to.trim_start_matches('+')), ("from", FROM.trim_start_matches('+')), ("uuid", call)])
        .finish();
    let resp = http.get(format!("{base}/vonage/answer?{query}")).bearer_auth(jwt).send().await?;
    let ncco: Value = serde_json::from_str(&read(resp, "Vonage").await?).context("the NCCO is not JSON")?;
    let ep = &ncco[0]["endpoint"][0];
    let url = ep["uri"].as_str().context("the NCCO names no websocket uri")?.to_string();
    let auth = ep["authorization"]["value"].as_str().context("the NCCO has no authorization")?;
    let vt = ep["headers"]["vt"].as_str().context("the NCCO headers carry no vt")?;
    Ok(Answered { url, headers: vec![("Authorization".into(), auth.to_string())], params: pairs(&[("vt", vt)]) })
}
