//! Asterisk AudioSocket framing: one message's kind, length field and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_kind, payload)) = session::transport::audiosocket::parse(data) {
        assert!(payload.len() + 3 == data.len());
    }
});
