//! The client websocket protocol for browsers and apps (docs/client-protocol.md): JSON text
//! frames for control and events, binary frames for audio (PCM16 LE or Opus), 20 ms each.

use super::{Inbound, StartInfo, TransportError, WireCodec, WireEncoder};
use crate::SessionEvent;
use axum::extract::ws::Message;
use media::opus_codec::{OpusDecoder, OpusEncoder};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Pcm16,
    Opus,
}

pub struct ClientCodec {
    encoding: Encoding,
    sample_rate: u32,
    started: bool,
    opus_dec: Option<OpusDecoder>,
}

impl Default for ClientCodec {
    fn default() -> Self {
        Self { encoding: Encoding::Pcm16, sample_rate: 16000, started: false, opus_dec: None }
    }
}

/// Outbound half: binary audio in the client's encoding, JSON events.
pub struct ClientEncoder {
    sample_rate: u32,
    opus_enc: Option<OpusEncoder>,
    out: Vec<u8>,
}

impl ClientCodec {
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ControlIn {
    Start {
        #[serde(default)]
        call_id: Option<String>,
        #[serde(default)]
        params: HashMap<String, String>,
        #[serde(default)]
        audio: Option<AudioFormat>,
    },
    Stop,
    Dtmf {
        digit: String,
    },
    Mark {
        name: String,
    },
    Ping,
}

#[derive(Deserialize)]
struct AudioFormat {
    encoding: String,
    sample_rate: u32,
}

impl WireCodec for ClientCodec {
    fn gateway(&self) -> &'static str {
        "client"
    }

    fn decode(&mut self, msg: &Message, pcm: &mut Vec<i16>) -> Result<Inbound, TransportError> {
        match msg {
            Message::Binary(b) => {
                if !self.started {
                    return Err(TransportError::MediaBeforeStart);
                }
                match (self.encoding, self.opus_dec.as_mut()) {
                    (Encoding::Opus, Some(dec)) => {
                        dec.decode(b, pcm).map_err(|e| TransportError::BadAudio(e.to_string()))?;
                    }
                    _ => media::l16::decode_le_into(b, pcm).map_err(|e| TransportError::BadAudio(e.to_string()))?,
                }
                Ok(Inbound::Audio)
            }
            Message::Text(t) => {
                let ctl: ControlIn = serde_json::from_str(t.as_str()).map_err(|e| {
                    if e.to_string().contains("unknown variant") {
                        TransportError::UnknownEvent(e.to_string())
                    } else {
                        TransportError::BadJson(e.to_string())
                    }
                })?;
                Ok(match ctl {
                    ControlIn::Start { call_id, params, audio } => {
                        if let Some(a) = audio {
                            self.encoding = match a.encoding.as_str() {
                                "pcm16" | "linear16" => Encoding::Pcm16,
                                "opus" => Encoding::Opus,
                                other => {
                                    return Err(TransportError::UnsupportedFormat(other.chars().take(20).collect()))
                                }
                            };
                            let ok = match self.encoding {
                                Encoding::Pcm16 => [8000, 16000, 24000, 48000].contains(&a.sample_rate),
                                Encoding::Opus => [8000, 16000, 24000, 48000].contains(&a.sample_rate),
                            };
                            if !ok {
                                return Err(TransportError::UnsupportedFormat(format!(
                                    "sample_rate {}",
                                    a.sample_rate
                                )));
                            }
                            self.sample_rate = a.sample_rate;
                        }
                        if self.encoding == Encoding::Opus {
                            let bad =
                                |e: media::opus_codec::CodecError| TransportError::UnsupportedFormat(e.to_string());
                            self.opus_dec = Some(OpusDecoder::new(self.sample_rate).map_err(bad)?);
                        }
                        self.started = true;
                        let stream_id = call_id.clone().unwrap_or_default();
                        Inbound::Start(StartInfo { stream_id, call_id, params })
                    }
                    ControlIn::Stop => Inbound::Stop,
                    ControlIn::Dtmf { digit } => Inbound::Dtmf(digit),
                    ControlIn::Mark { name } => Inbound::Mark(name),
                    ControlIn::Ping => Inbound::Ignore,
                })
            }
            Message::Close(_) => Ok(Inbound::Stop),
            Message::Ping(_) | Message::Pong(_) => Ok(Inbound::Ignore),
        }
    }

    fn input_rate(&self) -> u32 {
        self.sample_rate
    }

    fn encoder(&self) -> Box<dyn WireEncoder> {
        let opus_enc = match self.encoding {
            Encoding::Opus => OpusEncoder::new(self.sample_rate).ok(),
            Encoding::Pcm16 => None,
        };
        Box::new(ClientEncoder { sample_rate: self.sample_rate, opus_enc, out: Vec::with_capacity(2048) })
    }
}

impl WireEncoder for ClientEncoder {
    fn output_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Queues outbound media and drops the queue on `clear`.
    fn lead(&self) -> media::Lead {
        media::Lead::QUEUED
    }

    fn encode_audio(&mut self, frame: &[i16]) -> Message {
        if let Some(enc) = self.opus_enc.as_mut() {
            if enc.encode(frame, &mut self.out).is_ok() {
                return Message::Binary(bytes::Bytes::copy_from_slice(&self.out));
            }
        }
        media::l16::encode_le_into(frame, &mut self.out);
        Message::Binary(bytes::Bytes::copy_from_slice(&self.out))
    }

    fn encode_clear(&self) -> Option<Message> {
        Some(Message::Text(r#"{"type":"clear"}"#.into()))
    }

    fn encode_mark(&self, name: &str) -> Option<Message> {
        Some(Message::Text(serde_json::json!({"type": "mark", "name": name}).to_string().into()))
    }

    fn encode_event(&self, ev: &SessionEvent) -> Option<Message> {
        serde_json::to_string(ev).ok().map(|s| Message::Text(s.into()))
    }

    fn encode_error(&self, code: &str, message: &str) -> Option<Message> {
        let v = serde_json::json!({"type": "error", "code": code, "message": message});
        Some(Message::Text(v.to_string().into()))
    }
}
