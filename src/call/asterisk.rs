//! Asterisk AudioSocket as Asterisk speaks it (protocols/telephony.md A5): raw TCP to the
//! server's `serve --audiosocket-listen` address (`call --audiosocket`), the call's UUID first
//! (`01 00 10 <16 bytes>`, also the id the server registers the call under), then 8 kHz signed
//! linear little-endian audio (`10 01 40 <320 bytes>`) every 20 ms, and `00 00 00` to hang up.
//!
//! Nothing comes back but audio, played as it arrives: there are no marks and no clear, so a
//! barge-in shows only as the agent's audio stopping, and a pause in it ends a turn for the
//! printout. An error frame comes only before the server hangs up on a failed call; the
//! server's hang-up reads as the socket closing. The protocol carries no agent: the server's
//! `--audiosocket-agent` answers.

use super::wire::{CallerWire, Received, WireError};
use super::{CallSink, CallStream};
use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use session::transport::audiosocket::{
    parse, push_frame, FrameReader, ERROR_HANGUP, HANGUP_FRAME, KIND_ERROR, KIND_HANGUP, KIND_SLIN, KIND_UUID,
};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::{self, Message};

const RATE: u32 = 8000;

pub(crate) struct Asterisk {
    uuid: uuid::Uuid,
    call_id: String,
    raw: Vec<u8>,
}

impl Asterisk {
    pub fn new() -> Self {
        let uuid = uuid::Uuid::new_v4();
        Self { uuid, call_id: uuid.to_string(), raw: Vec::with_capacity(323) }
    }
}

impl CallerWire for Asterisk {
    fn rate(&self) -> u32 {
        RATE
    }

    fn call_id(&self) -> &str {
        &self.call_id
    }

    /// AudioSocket carries nothing but the call's UUID.
    fn add_param(&mut self, _key: &str, _value: &str) {}

    fn opening(&mut self) -> Vec<Message> {
        let mut f = Vec::with_capacity(19);
        push_frame(&mut f, KIND_UUID, self.uuid.as_bytes());
        vec![Message::binary(f)]
    }

    fn media(&mut self, frame: &[i16]) -> Message {
        self.raw.clear();
        self.raw.push(KIND_SLIN);
        self.raw.extend_from_slice(&((frame.len() * 2) as u16).to_be_bytes());
        for s in frame {
            self.raw.extend_from_slice(&s.to_le_bytes());
        }
        Message::binary(self.raw.clone())
    }

    fn stop(&mut self) -> Message {
        Message::binary(HANGUP_FRAME.to_vec())
    }

    fn mark_played(&mut self, _name: &str) -> Option<Message> {
        None
    }

    fn text(&mut self, _v: &Value, _pcm: &mut Vec<i16>) -> Received {
        Received::Error(WireError::new("unexpected_text", "AudioSocket has no text messages"))
    }

    fn binary(&mut self, b: &[u8], pcm: &mut Vec<i16>) -> Received {
        let (kind, payload) = match parse(b) {
            Ok(f) => f,
            Err(e) => return Received::Error(WireError::new("bad_frame", format!("server sent {e}"))),
        };
        match kind {
            KIND_SLIN => match media::l16::decode_le_into(payload, pcm) {
                Ok(()) => Received::Audio,
                Err(e) => Received::Error(WireError::new("bad_audio", format!("server sent {e}"))),
            },
            KIND_HANGUP => Received::Ignore,
            KIND_ERROR if payload == [ERROR_HANGUP] => Received::Ignore,
            KIND_ERROR => Received::Error(WireError::new("server_error", "server sent an error frame")),
            k => Received::Error(WireError::new("unexpected_kind", format!("server sent message kind 0x{k:02x}"))),
        }
    }

    fn turn_gap(&self) -> Option<Duration> {
        Some(Duration::from_millis(200))
    }
}

/// Dial the server's AudioSocket listener. Messages sent go out as they are (the wire framed
/// them); a close is a half-close. Frames read come back as binary messages, except the
/// server's hang-up, which reads as a close.
pub(super) async fn connect(addr: &str) -> anyhow::Result<(CallSink, CallStream)> {
    let sock = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to the AudioSocket listener at {addr}"))?;
    sock.set_nodelay(true).context("TCP_NODELAY")?;
    let (read, mut write) = sock.into_split();

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(64);
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let r = match m {
                Message::Binary(b) => write.write_all(&b).await,
                Message::Close(_) => break,
                _ => Ok(()),
            };
            if r.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    });
    let sink = tokio_util::sync::PollSender::new(tx).sink_map_err(|_| tungstenite::Error::ConnectionClosed);

    let state = (FrameReader::new(BufReader::new(read)), false);
    let stream = futures::stream::unfold(state, |(mut r, done)| async move {
        if done {
            return None;
        }
        let item = match r.next().await {
            Ok(Some(f)) if f.first() == Some(&KIND_HANGUP) => Ok(Message::Close(None)),
            Ok(Some(f)) => Ok(Message::Binary(f)),
            Ok(None) => return None,
            Err(e) => Err(tungstenite::Error::Io(std::io::Error::other(e))),
        };
        let done = !matches!(item, Ok(Message::Binary(_)));
        Some((item, (r, done)))
    });
    Ok((Box::pin(sink), stream.boxed()))
}

#[cfg(test)]
mod tests {
    //! The caller's AudioSocket against the server's own codec for it.

    use super::*;
    use axum::extract::ws::Message as AxMessage;
    use session::transport::{AudioSocketCodec, Inbound, WireCodec};

    fn to_axum(m: Message) -> AxMessage {
        match m {
            Message::Binary(b) => AxMessage::Binary(b),
            other => panic!("AudioSocket is binary only, got {other:?}"),
        }
    }

    #[test]
    fn round_trips_with_the_server_codec() {
        let mut wire = Asterisk::new();
        let mut codec = AudioSocketCodec::new("a1");
        let mut pcm = Vec::new();
        for m in wire.opening() {
            assert_eq!(codec.decode(&to_axum(m), &mut pcm), Ok(Inbound::Ignore));
        }
        let frame: Vec<i16> = (0..160).map(|i| (i * 97 - 5000) as i16).collect();
        let Ok(Inbound::Start(info)) = codec.decode(&to_axum(wire.media(&frame)), &mut pcm) else {
            panic!("the first audio starts the call")
        };
        assert_eq!(info.call_id.as_deref(), Some(wire.call_id()));
        assert_eq!(codec.input_rate(), wire.rate());
        assert_eq!(codec.decode(&to_axum(wire.media(&frame)), &mut pcm), Ok(Inbound::Audio));
        assert_eq!(pcm, frame);

        let mut enc = codec.encoder();
        let mut got = Vec::new();
        let AxMessage::Binary(b) = enc.encode_audio(&frame) else { panic!("binary") };
        assert!(matches!(wire.binary(&b, &mut got), Received::Audio));
        assert_eq!(got, frame);
        assert!(enc.encode_clear().is_none() && enc.encode_mark("t").is_none());
        let Some(AxMessage::Binary(b)) = enc.encode_error("x", "y") else { panic!("error frame") };
        assert!(matches!(wire.binary(&b, &mut got), Received::Error(e) if e.code == "server_error"));
        assert!(matches!(wire.binary(&[0x10, 0, 9], &mut got), Received::Error(e) if e.code == "bad_frame"));
        assert!(matches!(wire.binary(&[0x12, 0, 0], &mut got), Received::Error(e) if e.code == "unexpected_kind"));
        assert!(wire.mark_played("t").is_none());
        assert_eq!(codec.decode(&to_axum(wire.stop()), &mut pcm), Ok(Inbound::Stop));
    }
}
