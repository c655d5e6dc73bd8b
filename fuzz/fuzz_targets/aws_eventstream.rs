//! AWS event-stream framing (Transcribe, Polly, Bedrock), fed in arbitrary chunk sizes: the
//! first byte sets the chunk length, as HTTP/2 and websocket frame boundaries need not match
//! messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let _ = aws::eventstream::Message::decode(rest);
    let mut dec = aws::eventstream::MessageDecoder::new();
    for piece in rest.chunks(usize::from(chunk).max(1)) {
        dec.push(piece);
        loop {
            match dec.next_message() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
