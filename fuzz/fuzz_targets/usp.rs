//! Azure Speech USP frames: text (headers, blank line, body), binary (length-prefixed headers)
//! and the RIFF header of audio it announces.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = usp::parse_binary(data);
    let _ = usp::parse_wav_header(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = usp::parse_text(text);
    }
});
