//! Entry point for the `tts_wire` fuzz target (`fuzz/fuzz_targets/tts_wire.rs`): every
//! provider's decoder of what its server sends us. Public only so the fuzz crate can reach the private decoders.
//!
//! Input layout: the first byte (modulo [`ARMS`]) picks the decoder; the rest, split on `0xFF`,
//! is a sequence of inbound messages fed in order to one decoder instance. A message that is
//! valid UTF-8 goes as a text frame, any other as a binary frame (JSON-only decoders skip it).
//! The socket dialects (Cartesia, Deepgram Aura, Rime) are first handed one text piece and a
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
    "elevenlabs", // 0: stream-input and multi-context JSON (`elevenlabs/wire.rs` parse)
    "cartesia",   // 1: socket dialect + word timeline
    "deepgram",   // 2: Aura socket dialect (binary audio, JSON control) + word timeline
    "rime",       // 3: socket dialect + word timeline
    "xai",        // 4: `xai/wire.rs` parse
    "soniox",     // 5: `soniox/wire.rs` parse
    "azure",      // 6: USP text (`response`) and binary (`audio`) frames, and `parse_ssml`
    "polly",      // 7: SynthesizeSpeech error bodies (`polly::error_of`)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One valid message per arm, taken from the decoders' own tests.
    const SAMPLES: &[&[u8]] = &[
        br#"{"audio":"AQACAA==","alignment":{"chars":["H","i"],"charStartTimesMs":[0,50],"charDurationsMs":[50,50]},"normalizedAlignment":null}"#,
        br#"{"type":"chunk","context_id":"fuzz","data":"AQACAA==","done":false,"status_code":206}"#,
        b"\x80\x81\x82\x83", // Aura audio is a binary frame of PCM
        br#"{"type":"timestamps","word_timestamps":{"words":["Hi."],"start":[0],"end":[0.15]},"contextId":"fuzz"}"#,
        br#"{"type":"audio.delta","delta":"AQACAA==","audio_timestamps":{"graph_chars":["H","i"],"graph_times":[[0.0,0.08],[0.08,0.15]]}}"#,
        br#"{"stream_id":"s1","audio":"AQACAA==","audio_end":false,"timestamps":{"characters":["H","i"],"character_start_times_seconds":[0.0,0.1],"character_end_times_seconds":[0.1,0.25]}}"#,
        b"X-RequestId: 0123456789abcdef0123456789abcdef\r\nContent-Type: application/json; charset=utf-8\r\nPath: response\r\n\r\n{\"context\":{\"serviceTag\":\"t\"},\"audio\":{\"type\":\"inline\",\"streamId\":\"A1B2\"}}",
        br#"{"__type":"com.amazonaws.polly.v1#TextLengthExceededException","message":"Maximum text length has been exceeded"}"#,
    ];

    /// Arm pairs whose providers spell a message alike, so each decodes the other's sample:
    /// ElevenLabs and Soniox both send base64 `audio`, Cartesia and Rime both send `chunk`s.
    /// [`twins_are_told_apart`] checks each pair on a message only one of them takes.
    const TWINS: &[(usize, usize)] = &[(0, 5), (5, 0), (1, 3), (3, 1)];

    fn input(arm: usize, msgs: &[&[u8]]) -> Vec<u8> {
        let mut data = vec![u8::try_from(arm).unwrap()];
        data.extend(msgs.join(&0xFF));
        data
    }

    #[test]
    fn every_arm_decodes_its_own_sample_and_no_other() {
        assert_eq!(SAMPLES.len(), ARMS.len());
        for (arm, sample) in SAMPLES.iter().enumerate() {
            for (other, name) in ARMS.iter().enumerate() {
                let n = wire(&input(other, &[sample]));
                if other == arm {
                    assert!(n > 0, "{name} decoded nothing from its own sample");
                } else if !TWINS.contains(&(arm, other)) {
                    assert_eq!(n, 0, "{name} decoded the {} sample", ARMS[arm]);
                }
            }
        }
        assert!(wire(&input(ARMS.len(), &[SAMPLES[0]])) > 0, "the arm index wraps");
    }

    #[test]
    fn twins_are_told_apart() {
        let final_only: &[u8] = br#"{"isFinal":true}"#;
        let terminated: &[u8] = br#"{"terminated":true,"stream_id":"s1"}"#;
        assert_eq!((wire(&input(0, &[final_only])), wire(&input(5, &[final_only]))), (1, 0));
        assert_eq!((wire(&input(0, &[terminated])), wire(&input(5, &[terminated]))), (0, 1));
        // Rime names the context `contextId`, Cartesia `context_id`: each skips another context.
        let rime_other: &[u8] = br#"{"type":"chunk","data":"AQID","contextId":"other"}"#;
        let cartesia_other: &[u8] = br#"{"type":"chunk","data":"AQID","context_id":"other"}"#;
        assert_eq!((wire(&input(1, &[rime_other])), wire(&input(3, &[rime_other]))), (1, 0));
        assert_eq!((wire(&input(1, &[cartesia_other])), wire(&input(3, &[cartesia_other]))), (0, 1));
    }

    #[test]
    fn state_carries_across_messages() {
        // Deepgram finishes on the `Flushed` that answers the last flush after end of input.
        let flushed: &[u8] = br#"{"type":"Flushed","sequence_id":0}"#;
        assert_eq!(wire(&input(2, &[flushed])), 0, "nothing asked to finish yet");
        assert_eq!(wire(&input(2, &[b"", flushed])), 1);
        // Binary frames are Aura's audio; Azure audio is a binary USP frame.
        assert_eq!(wire(&input(2, &[&[0x80, 0x81]])), 1);
        let mut frame = vec![0, 13]; // header block length, then the headers, then PCM
        frame.extend_from_slice(b"Path: audio\r\n\x80\x81");
        assert_eq!(wire(&input(6, &[&frame])), 1);
        let ssml = br#"<speak version="1.0"><voice name="en-US-AvaNeural">Hi</voice></speak>"#;
        assert_eq!(wire(&input(6, &[ssml])), 1);
    }

    #[test]
    fn hostile_messages_do_not_panic() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let hostile: Vec<&[u8]> = vec![
            b"",
            b"{",
            br#"{"audio":"AQ"#,
            br#"{"audio":"!!!!","alignment":{"chars":["a"],"charStartTimesMs":[1e308],"charDurationsMs":[-1e308]}}"#,
            br#"{"type":"timestamps","word_timestamps":{"words":["a","b"],"start":[1e308,-1],"end":[1e308,1e308]}}"#,
            br#"{"type":"timestamps","word_timestamps":{"words":["a","b"],"start":[1.7976931348623157e308,0],"end":[1.7976931348623157e308,1e-300]}}"#,
            br#"{"type":"audio.delta","delta":7,"audio_timestamps":{"graph_chars":["a"],"graph_times":[[]]}}"#,
            br#"{"error_code":99999999999999999999,"audio":"AQ=="}"#,
            br#"{"stream_id":"s","audio":"","timestamps":{"characters":["a","b"],"character_start_times_seconds":[1e308],"character_end_times_seconds":[]}}"#,
            br#"{"type":"error","status_code":70000}"#,
            br#"{"__type":"#,
            br#"{"__type":7,"code":[],"message":{}}"#,
            b"Path: response\r\n\r\n{\"audio\":{}}",
            b"<speak><voice name='",
            b"<speak><voice name=\"a\">x</voice",
            b"<speak><voice name=\"\xc3\xa9\">&amp;&#xFFFFFFFF;&lt</voice></speak>",
            &[0xFF, 0xFF],
            &[0, 200, b'a'],
            &[0xC3],
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
        }
        assert_eq!(wire(&[]), 0);
    }
}
