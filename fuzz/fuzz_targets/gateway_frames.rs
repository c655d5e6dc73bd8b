//! Every gateway's inbound websocket frames, as a sequence (so `start` then `media` states are
//! reached): the first byte picks the gateway, 0xFF bytes separate messages, a message that is
//! valid UTF-8 goes as a text frame and any other as a binary frame.
#![no_main]

use axum::extract::ws::Message;
use libfuzzer_sys::fuzz_target;
use session::transport::{self, WireCodec};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let mut codec: Box<dyn WireCodec> = match pick % 6 {
        0 => Box::new(transport::TwilioCodec::new()),
        1 => Box::new(transport::TelnyxCodec::new()),
        2 => Box::new(transport::PlivoCodec::new()),
        3 => Box::new(transport::VonageCodec::new()),
        4 => Box::new(transport::ClientCodec::new()),
        _ => Box::new(transport::AudioSocketCodec::new("default")),
    };
    let mut pcm = Vec::new();
    for part in rest.split(|&b| b == 0xFF) {
        let msg = match std::str::from_utf8(part) {
            Ok(text) => Message::Text(text.into()),
            Err(_) => Message::Binary(part.to_vec().into()),
        };
        if codec.decode(&msg, &mut pcm).is_ok() {
            let _ = codec.input_rate();
        }
    }
});
