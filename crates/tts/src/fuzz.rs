//! Entry point for the `tts_wire` fuzz target (`fuzz/fuzz_targets/tts_wire.rs`): every
//! provider's decoder of what its server sends us. Public only so the fuzz crate can reach the private decoders.
//!
//! Input layout: the first byte (modulo [`ARMS`]) picks the decoder; the rest, split on `0xFF`,
//! is a sequence of inbound messages fed in order to one decoder instance. A message that is
//! valid UTF-8 goes as a text frame, any other as a binary frame (JSON-only decoders skip it).
//! The socket dialects (Cartesia, Deepgram Aura and Flux, Rime) are first handed one text piece and a
//! flush, as a real turn does before the server says anything; an empty message then is the
//! local end of input (`close`), so their "finished" states are reachable too.

use crate::socket::pump::{Dialect, Incoming};
use crate::socket::words::Timeline;
use crate::{azure, cartesia, deepgram, elevenlabs, polly, rime, soniox, xai, Alignment, TtsError};
use tokio_tungstenite::tungstenite::Message;

/// The context id the context-tagging dialects are built with.
const CONTEXT: &str = "fuzz";

/// The decoders, by arm index (the first input byte modulo their number).
pub const ARMS: &[&str] = &[
    "elevenlabs",    // 0: stream-input and multi-context JSON (`elevenlabs/wire.rs` parse)
    "cartesia",      // 1: socket dialect + word timeline
    "deepgram",      // 2: Aura socket dialect (binary audio, JSON control) + word timeline
    "rime",          // 3: socket dialect + word timeline
    "xai",           // 4: `xai/wire.rs` parse
    "soniox",        // 5: `soniox/wire.rs` parse
    "azure",         // 6: USP text (`response`) and binary (`audio`) frames, and `parse_ssml`
    "polly",         // 7: SynthesizeSpeech error bodies (`polly::error_of`)
    "deepgram-flux", // 8: Flux TTS socket dialect (binary audio, JSON turn messages)
];

/// Decode `data` as described in the module docs. Returns how many messages decoded to
/// something the stream uses (audio, timings, an end marker, a typed refusal), so a test can
/// tell an arm really decodes; never panics by itself.
pub fn wire(data: &[u8]) -> usize {
    let Some((&pick, rest)) = data.split_first() else { return 0 };
    let msgs = rest.split(|&b| b == 0xFF);
    match usize::from(pick) % ARMS.len() {
        0 => texts(msgs, |t| {
            elevenlabs::wire::parse(t).is_ok_and(|m| m.error.is_none() && (m.audio.is_some() || m.is_final))
        }),
        1 => dialect(cartesia::wire::CartesiaDialect::new(CONTEXT.into(), "sonic-3", "voice", 16_000), msgs),
        2 => dialect(deepgram::wire::DeepgramDialect::default(), msgs),
        3 => dialect(rime::wire::RimeDialect::new(CONTEXT.into()), msgs),
        4 => texts(msgs, |t| {
            matches!(xai::wire::parse(t), Ok(xai::wire::Incoming::Audio { .. } | xai::wire::Incoming::Done))
        }),
        5 => texts(msgs, |t| {
            soniox::wire::parse(t).is_ok_and(|m| m.error.is_none() && (m.audio.is_some() || m.terminated))
        }),
        6 => msgs.map(azure_frame).sum(),
        8 => dialect(deepgram::flux::FluxDialect::default(), msgs),
        _ => msgs
            .filter(|body| {
                // Only answers whose code the body named (or a typed refusal) count as decoded.
                match polly::error_of(400, None, body) {
                    TtsError::Provider { message } => !message.starts_with("HTTP "),
                    _ => true,
                }
            })
            .count(),
    }
}

/// UTF-8 messages to a JSON decoder; counts those it took.
fn texts<'a>(msgs: impl Iterator<Item = &'a [u8]>, mut took: impl FnMut(&str) -> bool) -> usize {
    msgs.filter_map(|m| std::str::from_utf8(m).ok()).filter(|t| took(t)).count()
}

/// A socket dialect over the whole sequence, word timings laid on one timeline as the pump does.
fn dialect<'a, D: Dialect>(mut d: D, msgs: impl Iterator<Item = &'a [u8]>) -> usize {
    let (mut out, mut incoming) = (Vec::new(), Vec::new());
    let (mut timeline, mut aligned) = (Timeline::default(), Alignment::default());
    let _ = d.text("Hello there.", &mut out);
    d.flush(&mut out);
    let mut took = 0;
    for m in msgs {
        if m.is_empty() {
            d.close(&mut out);
            continue;
        }
        let msg = match std::str::from_utf8(m) {
            Ok(text) => Message::text(text),
            Err(_) => Message::binary(m.to_vec()),
        };
        d.parse(msg, &mut incoming);
        for inc in incoming.drain(..) {
            match inc {
                Incoming::Words(w) => timeline.push(&w, &mut aligned),
                Incoming::Fatal(_) => continue,
                Incoming::Timings(_)
                | Incoming::Audio(_)
                | Incoming::Voiced
                | Incoming::Done
                | Incoming::Finished
                | Incoming::Ended => {}
            }
            took += 1;
        }
    }
    d.goodbye(&mut out);
    d.cancel(&mut out);
    took
}

/// One Azure synthesis frame: as binary (USP header block, then audio), and when it is text, as
/// a text frame (headers, blank line, `response` body) and as the SSML the simulator parses.
fn azure_frame(frame: &[u8]) -> usize {
    let audio = usp::parse_binary(frame)
        .is_ok_and(|(h, body)| h.path.is_some_and(|p| p.eq_ignore_ascii_case("audio")) && !body.is_empty());
    let Ok(text) = std::str::from_utf8(frame) else { return usize::from(audio) };
    let response = usp::parse_text(text).is_ok_and(|(h, body)| {
        h.path.is_some_and(|p| p.eq_ignore_ascii_case("response"))
            && serde_json::from_str::<azure::wire::Response>(body).is_ok()
    });
    let ssml = azure::wire::parse_ssml(text).is_some();
    usize::from(audio) + usize::from(response) + usize::from(ssml)
}
