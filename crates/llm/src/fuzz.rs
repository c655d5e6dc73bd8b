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

#[cfg(test)]
mod tests {
    use super::*;

    fn bedrock_frame(event: &'static str, json: &str) -> Vec<u8> {
        let frame =
            aws::eventstream::Message::event(event, "application/json", json.as_bytes().to_vec()).encode().unwrap();
        assert!(!frame.contains(&0xFF), "a sample frame must not hold the separator");
        frame
    }

    /// One valid body per arm, payloads taken from the decoders' own tests.
    fn samples() -> Vec<Vec<u8>> {
        vec![
            br#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}

data: [DONE]

"#
            .to_vec(),
            br#"event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"It's 21"}

"#
            .to_vec(),
            br#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

"#
            .to_vec(),
            b"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]},\"index\":0}]}\r\n\r\n"
                .to_vec(),
            bedrock_frame("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
            b"event: ping\ndata: 1\n\n".to_vec(),
            b"event: contentBlockDelta\ndata: {\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}\n\n".to_vec(),
        ]
    }

    fn input(arm: usize, chunks: &[&[u8]]) -> Vec<u8> {
        let mut data = vec![u8::try_from(arm).unwrap()];
        data.extend(chunks.join(&0xFF));
        data
    }

    #[test]
    fn every_arm_decodes_its_own_sample_and_no_other() {
        let samples = samples();
        assert_eq!(samples.len(), ARMS.len());
        for (arm, sample) in samples.iter().enumerate() {
            for (other, name) in ARMS.iter().enumerate() {
                let n = wire(&input(other, &[sample]));
                if other == arm {
                    assert!(n > 0, "{name} decoded nothing from its own sample");
                } else if other == 5 && arm != 4 {
                    // The bare SSE framer reads every SSE body; only Bedrock's is not one.
                    assert!(n > 0, "sse found no event in the {} sample", ARMS[arm]);
                } else {
                    assert_eq!(n, 0, "{name} decoded the {} sample", ARMS[arm]);
                }
            }
        }
        assert!(wire(&input(ARMS.len(), &[&samples[0]])) > 0, "the arm index wraps");
    }

    #[test]
    fn chunks_split_anywhere_decode_alike() {
        for (arm, sample) in samples().iter().enumerate() {
            let whole = wire(&input(arm, &[sample]));
            let bytes: Vec<&[u8]> = sample.chunks(1).collect();
            assert_eq!(wire(&input(arm, &bytes)), whole, "{} split at every byte", ARMS[arm]);
        }
        // The end marker stops decoding: what follows `[DONE]` is never read.
        let after = br#"data: {"choices":[{"index":0,"delta":{"content":"late"}}]}

"#;
        assert_eq!(wire(&input(0, &[&samples()[0], after])), 1);
    }

    #[test]
    fn hostile_bodies_do_not_panic() {
        let deep = format!("data: {}{}\n\n", "[".repeat(10_000), "]".repeat(10_000));
        let hostile: Vec<&[u8]> = vec![
            b"",
            b"data: {\n\n",
            b"data: {\"choices\":[{\"index\":4294967296,\"delta\":{\"tool_calls\":[{\"index\":18446744073709551615,\"function\":{\"arguments\":\"x\"}}]}}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":4294967295,\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}\n\n",
            b"data: {\"usage\":{\"prompt_tokens\":18446744073709551615,\"completion_tokens\":18446744073709551615}}\n\n",
            b"data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":18446744073709551615,\"cache_creation_input_tokens\":18446744073709551615,\"cache_read_input_tokens\":18446744073709551615}}}\n\n",
            b"data: {\"type\":\"content_block_start\",\"index\":4294967295,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}}\n\n",
            b"data: {\"type\":\"content_block_delta\",\"index\":4294967295,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n",
            b"data: {\"usageMetadata\":{\"promptTokenCount\":18446744073709551615,\"candidatesTokenCount\":18446744073709551615,\"thoughtsTokenCount\":18446744073709551615}}\n\n",
            b"data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":18446744073709551615,\"output_tokens\":18446744073709551615}}}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"b\",\"function\":{\"name\":\"g\"}}]}}]}\n\n",
            b"data: {\"candidates\":7}\n\n",
            b"data: [DONE\r\r\r:\xc3",
            b"\xe2\x82",
            b"\xac\n\n",
            &[0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 0x10, 0, 0, 0, 0],
            deep.as_bytes(),
        ];
        for arm in 0..ARMS.len() {
            for h in &hostile {
                wire(&input(arm, &[h]));
                wire(&input(arm, &[h, h, b"", h]));
            }
            for a in &hostile {
                for b in &hostile {
                    wire(&input(arm, &[a, b]));
                }
            }
            wire(&input(arm, &hostile));
        }
        assert_eq!(wire(&[]), 0);
    }
}
