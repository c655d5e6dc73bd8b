//! Entry point for the `stt_wire` fuzz target (`fuzz/fuzz_targets/stt_wire.rs`): every
//! provider's decoder of what its server sends us, driven the way its socket task drives it.
//! Public (and hidden from the docs) only so the fuzz crate can reach the private decoders.
//!
//! Input layout: the first byte (modulo [`ARMS`]) picks the decoder; the rest, split on `0xFF`,
//! is a sequence of inbound messages fed in order to one decoder instance, so stateful decoders
//! (turn tracking, pending flushes, billed totals) reach their later states. Text decoders get a
//! message only when it is valid UTF-8 (websocket text frames always are); an empty message is
//! a local `Finalize` instead, which is how a flush's answer is told from an endpoint.

use crate::wspump::{Dialect, Strict};
use crate::{assemblyai, azure, cartesia, deepgram, elevenlabs, gladia, soniox, transcribe, SttEvent};
use bytes::BytesMut;

/// Rate the stateful decoders are built with (it only scales local time estimates).
const SAMPLE_RATE: u32 = 16_000;

/// The decoders, by arm index (the first input byte modulo their number).
pub const ARMS: &[&str] = &[
    "deepgram",      // 0: nova, `deepgram/wire.rs` decode
    "deepgram-flux", // 1: Flux v2 `TurnInfo` dialect
    "assemblyai",    // 2: v3 dialect (turn tracking)
    "gladia",        // 3: envelope wire
    "soniox",        // 4: token dialect
    "cartesia",      // 5: transcript wire
    "elevenlabs",    // 6: Scribe realtime wire
    "azure",         // 7: USP text frame + service message by `Path`
    "transcribe",    // 8: AWS event-stream frame + `TranscriptEvent`
    // 9: a `TranscriptEvent` payload alone: the frame CRCs keep arm 8's mutated JSON out of reach.
    "transcribe-json",
];

/// Decode `data` as described in the module docs. Returns the number of events the decoder
/// produced (so a test can tell an arm really decodes); never panics by itself.
pub fn wire(data: &[u8]) -> usize {
    let Some((&pick, rest)) = data.split_first() else { return 0 };
    let msgs = rest.split(|&b| b == 0xFF);
    match usize::from(pick) % ARMS.len() {
        0 => texts(msgs, |text| deepgram::wire::decode(text).ok().flatten().map_or(0, |_| 1)),
        1 => dialect(deepgram::flux::Flux { sample_rate: SAMPLE_RATE }, msgs),
        2 => dialect(assemblyai::Wire { buf: BytesMut::new(), min_bytes: 1600, max_bytes: 32_000, turn: None }, msgs),
        3 => dialect(Strict::new(gladia::wire::GladiaWire::default()), msgs),
        4 => dialect(soniox::Wire::default(), msgs),
        5 => dialect(Strict::new(cartesia::wire::CartesiaWire::new(SAMPLE_RATE)), msgs),
        6 => dialect(Strict::new(elevenlabs::wire::ElevenLabsWire::new(SAMPLE_RATE)), msgs),
        7 => texts(msgs, azure_message),
        8 => binary(msgs, |frame, out| transcribe::wire::decode(frame, out).is_ok()),
        _ => binary(msgs, |payload, out| transcribe::wire::transcript(payload, out).is_ok()),
    }
}

/// Each message to `decode`, summing the events it pushed (kept or not).
fn binary<'a>(
    msgs: impl Iterator<Item = &'a [u8]>,
    mut decode: impl FnMut(&[u8], &mut Vec<SttEvent>) -> bool,
) -> usize {
    let mut out = Vec::new();
    msgs.map(|m| {
        out.clear();
        decode(m, &mut out);
        out.len()
    })
    .sum()
}

/// Each UTF-8 message to `decode`, summing what it reports.
fn texts<'a>(msgs: impl Iterator<Item = &'a [u8]>, mut decode: impl FnMut(&str) -> usize) -> usize {
    msgs.filter_map(|m| std::str::from_utf8(m).ok()).map(&mut decode).sum()
}

/// A socket-task dialect over the whole sequence, ending with its usage figure.
fn dialect<'a, D: Dialect>(mut d: D, msgs: impl Iterator<Item = &'a [u8]>) -> usize {
    let (mut events, mut out, mut produced) = (Vec::<SttEvent>::new(), Vec::new(), 0);
    for m in msgs {
        if m.is_empty() {
            d.finalize(&mut out);
            out.clear();
            continue;
        }
        let Ok(text) = std::str::from_utf8(m) else { continue };
        let _ = d.decode(text, &mut events, &mut out);
        out.clear();
        produced += events.len();
        events.clear();
    }
    let _ = d.usage(0, SAMPLE_RATE);
    produced
}

/// An Azure Speech text frame: USP headers, then the body decoded by its `Path`, as the socket
/// task does; counts service messages that would reach the caller.
fn azure_message(frame: &str) -> usize {
    let Ok((headers, body)) = usp::parse_text(frame) else { return 0 };
    match azure::wire::decode(headers.path.unwrap_or(""), body) {
        Ok(azure::wire::Service::Other) | Err(_) => 0,
        Ok(azure::wire::Service::Phrase(p)) => match azure::wire::status(&p.recognition_status) {
            azure::wire::Status::Failed(_) => 0,
            _ => usize::from(!p.text().is_empty()),
        },
        Ok(_) => 1,
    }
}
