//! Gateway wire protocols. A [`WireCodec`] turns a gateway's websocket messages into PCM and
//! control, and PCM and control back into its messages; the runtime is the same for all.

pub mod audiosocket;
mod client;
mod lenient;
mod media_text;
mod plivo;
mod telnyx;
mod twilio;
mod vonage;

pub use audiosocket::{AudioSocketCodec, AudioSocketEncoder};
pub use client::{ClientCodec, ClientEncoder};
pub(crate) use media_text::MediaText;
pub use plivo::{PlivoCodec, PlivoEncoder};
pub use telnyx::{TelnyxCodec, TelnyxEncoder};
pub use twilio::{TwilioCodec, TwilioEncoder};
pub use vonage::{VonageCodec, VonageEncoder};

/// A caller-supplied string cut short enough for a log line or close reason.
pub(crate) fn clip(s: &str) -> String {
    lenient::clip(s, 40)
}

use crate::SessionEvent;
use axum::extract::ws::Message;
use futures::{Sink, Stream};
use std::collections::HashMap;
use std::pin::Pin;
use thiserror::Error;

/// The gateway's outbound half: a websocket's sink, or an adapter that frames [`Message`]s for
/// a gateway that is not a websocket (AudioSocket over TCP).
pub type GatewaySink = Pin<Box<dyn Sink<Message, Error = axum::Error> + Send>>;
/// The gateway's inbound half, as [`GatewaySink`].
pub type GatewayStream = Pin<Box<dyn Stream<Item = Result<Message, axum::Error>> + Send>>;

/// Largest websocket message accepted from a gateway. A 20 ms Twilio frame is ~300 bytes; a
/// 20 ms PCM16 48 kHz frame is 1,920 bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A decoded inbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// Protocol greeting (Twilio `connected`); nothing to do.
    Connected,
    Start(StartInfo),
    /// Audio was decoded into the caller's PCM buffer.
    Audio,
    Dtmf(String),
    /// The gateway played audio up to a mark we sent.
    Mark(String),
    Stop,
    /// Ping/pong and the like.
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StartInfo {
    /// Gateway's stream id (Twilio `streamSid`).
    pub stream_id: String,
    /// Carrier call id (Twilio `callSid`, client `call_id`), used to watch the call.
    pub call_id: Option<String>,
    pub params: HashMap<String, String>,
}

/// Bad gateway input. Each has a stable code; none ends the server.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum TransportError {
    #[error("message is not valid JSON: {0}")]
    BadJson(String),
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("media payload is not valid base64")]
    BadBase64,
    #[error("binary frames are not part of this protocol")]
    BinaryNotAllowed,
    #[error("bad audio: {0}")]
    BadAudio(String),
    #[error("unsupported audio format: {0}")]
    UnsupportedFormat(String),
    #[error("media arrived before start")]
    MediaBeforeStart,
    #[error("no start within the time limit")]
    StartTimeout,
    /// The gateway itself reported a streaming failure (Telnyx `error` frame).
    #[error("gateway reported an error: {0}")]
    GatewayError(String),
    /// A frame of a binary protocol that is not well formed (AudioSocket).
    #[error("bad frame: {0}")]
    BadFrame(String),
}

impl TransportError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadJson(_) => "bad_json",
            Self::UnknownEvent(_) => "unknown_event",
            Self::MissingField(_) => "missing_field",
            Self::BadBase64 => "bad_base64",
            Self::BinaryNotAllowed => "binary_not_allowed",
            Self::BadAudio(_) => "bad_audio",
            Self::UnsupportedFormat(_) => "unsupported_format",
            Self::MediaBeforeStart => "media_before_start",
            Self::StartTimeout => "start_timeout",
            Self::GatewayError(_) => "gateway_error",
            Self::BadFrame(_) => "bad_frame",
        }
    }
}

/// One gateway's inbound wire format. Decoding reuses the caller's buffers; nothing awaits.
pub trait WireCodec: Send + 'static {
    fn gateway(&self) -> &'static str;
    /// Decode one message; audio goes into `pcm` (cleared first) at [`Self::input_rate`].
    fn decode(&mut self, msg: &Message, pcm: &mut Vec<i16>) -> Result<Inbound, TransportError>;
    fn input_rate(&self) -> u32;
    /// The outbound half, for the writer task; call after `Start` (it knows the stream id).
    fn encoder(&self) -> Box<dyn WireEncoder>;
}

/// One gateway's outbound wire format.
pub trait WireEncoder: Send + 'static {
    fn output_rate(&self) -> u32;
    /// How far ahead of playback agent audio may be sent. Real time unless the gateway queues
    /// media and empties the queue on `clear`.
    fn lead(&self) -> media::Lead {
        media::Lead::REAL_TIME
    }
    /// One 20 ms frame of agent audio at [`Self::output_rate`].
    fn encode_audio(&mut self, frame: &[i16]) -> Message;
    /// Tell the gateway to drop audio it has buffered (barge-in).
    fn encode_clear(&self) -> Option<Message>;
    fn encode_mark(&self, name: &str) -> Option<Message>;
    /// Session events, for gateways that carry them (the client websocket); carriers do not.
    fn encode_event(&self, _ev: &SessionEvent) -> Option<Message> {
        None
    }
    /// Tell the gateway why the session is refused or failed, before closing; carriers have no
    /// such message, so they only see the close.
    fn encode_error(&self, _code: &str, _message: &str) -> Option<Message> {
        None
    }
}

/// A JSON-text gateway's message, parsed as its envelope `T`; every other frame answers for
/// itself in the `Err` (binary is refused, close stops the call, ping and pong are ignored).
pub(crate) fn json_message<'a, T: serde::Deserialize<'a>>(
    msg: &'a Message,
) -> Result<(&'a str, T), Result<Inbound, TransportError>> {
    let text = match msg {
        Message::Text(t) => t.as_str(),
        Message::Binary(_) => return Err(Err(TransportError::BinaryNotAllowed)),
        Message::Close(_) => return Err(Ok(Inbound::Stop)),
        Message::Ping(_) | Message::Pong(_) => return Err(Ok(Inbound::Ignore)),
    };
    match serde_json::from_str(text) {
        Ok(env) => Ok((text, env)),
        Err(e) => Err(Err(TransportError::BadJson(e.to_string()))),
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use axum::extract::ws::Message;

    pub fn text(s: &str) -> Message {
        Message::Text(s.to_string().into())
    }

    pub fn json_of(m: Message) -> serde_json::Value {
        let Message::Text(t) = m else { panic!("not text") };
        serde_json::from_str(t.as_str()).unwrap()
    }
}
