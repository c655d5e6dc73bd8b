//! Entry point for the `llm_wire` fuzz target (`fuzz/fuzz_targets/llm_wire.rs`): every
//! provider's streaming-body decoding, framer then decoder, driven the way `pump::run_framed`
//! drives it. Public only so the fuzz crate can reach the private decoders.
//!
//! Input layout: the first byte (modulo [`ARMS`]) picks the provider; the rest is one response
//! body, split on `0xFF` into the chunks it arrives in (HTTP chunk boundaries fall anywhere, so
//! the framers must carry lines, UTF-8 sequences and event-stream frames across them). The
//! OpenAI-compatible family and Azure OpenAI use the Chat Completions decoder, so arm 0 covers
//! them.

use crate::pump::{Decode, Framer, Step};
use crate::sse::{SseEvent, SseParser};
use crate::{anthropic, bedrock, gemini, openai, LlmEvent};

/// The prompt-token estimate the decoders are built with (used only when no usage arrives).
const INPUT_ESTIMATE: u64 = 10;

/// The decoders, by arm index (the first input byte modulo their number).
pub const ARMS: &[&str] = &[
    "openai",    // 0: SSE + Chat Completions decoder (also the compat family and Azure)
    "responses", // 1: SSE + OpenAI Responses decoder
    "anthropic", // 2: SSE + Messages decoder
    "gemini",    // 3: SSE + streamGenerateContent decoder
    "bedrock",   // 4: AWS event-stream framer + ConverseStream decoder
    "sse",       // 5: the SSE framer alone
    // 6: the ConverseStream decoder behind SSE (`event:` as `:event-type`): the frame CRCs keep
    // arm 4's mutated payloads from reaching it.
    "bedrock-sse",
];

/// Decode `data` as described in the module docs. Returns the number of events the decoder
/// produced from the body (not counting the closing `Usage`), or for the bare SSE arm the
/// number of SSE events, so a test can tell an arm really decodes; never panics by itself.
pub fn wire(data: &[u8]) -> usize {
    let Some((&pick, rest)) = data.split_first() else { return 0 };
    let chunks = rest.split(|&b| b == 0xFF);
    match usize::from(pick) % ARMS.len() {
        0 => body(SseParser::new(), openai::decoder::Decoder::new(INPUT_ESTIMATE), chunks),
        1 => body(SseParser::new(), openai::responses::decoder::Decoder::new(INPUT_ESTIMATE), chunks),
        2 => body(SseParser::new(), anthropic::decoder::Decoder::new(INPUT_ESTIMATE), chunks),
        3 => body(SseParser::new(), gemini::decoder::Decoder::new(INPUT_ESTIMATE), chunks),
        4 => body(bedrock::decoder::EventStream::default(), bedrock::decoder::Decoder::new(INPUT_ESTIMATE), chunks),
        5 => {
            let mut sse = SseParser::new();
            let mut events = 0;
            for chunk in chunks {
                if sse.push(chunk, |_| events += 1).is_err() {
                    return events;
                }
            }
            let _ = sse.finish(|_| events += 1);
            events
        }
        _ => body(SseParser::new(), bedrock::decoder::Decoder::new(INPUT_ESTIMATE), chunks),
    }
}

/// `pump::run_framed` without the channel: chunks through the framer, payloads through the
/// decoder, stopping at the end marker or the first error, then the decoder's closing events.
fn body<'a>(mut framer: impl Framer, mut decoder: impl Decode, chunks: impl Iterator<Item = &'a [u8]>) -> usize {
    let (mut payloads, mut out) = (Vec::<SseEvent>::new(), Vec::<LlmEvent>::new());
    let (mut produced, mut completed) = (0, true);
    // `None` is the end of the body.
    for chunk in chunks.map(Some).chain([None]) {
        let framed = match chunk {
            Some(bytes) => framer.push(bytes, &mut payloads),
            None => framer.finish(&mut payloads),
        };
        // Payloads framed before an error still count, and an earlier end marker or error wins.
        let mut end = match framed {
            Err(_) => Some(false),
            Ok(()) => chunk.is_none().then_some(true),
        };
        for p in payloads.drain(..) {
            match decoder.event(p.event.as_deref(), &p.data, &mut out) {
                Ok(Step::Continue) => {}
                Ok(Step::Done) => {
                    end = Some(true);
                    break;
                }
                Err(_) => {
                    end = Some(false);
                    break;
                }
            }
        }
        produced += out.len();
        out.clear();
        if let Some(clean) = end {
            completed = clean;
            break;
        }
    }
    decoder.close(completed, &mut out);
    let _ = decoder.finish_reason();
    produced
}
