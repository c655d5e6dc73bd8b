//! WAV files (recorded calls, uploads to `switchboard call`): any bytes are refused with an
//! error or decoded, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = media::wav::read_wav_bytes(data);
});
