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
        8 => {
            let mut out = Vec::new();
            msgs.map(|frame| {
                out.clear();
                let _ = transcribe::wire::decode(frame, &mut out);
                out.len()
            })
            .sum()
        }
        _ => {
            let mut out = Vec::new();
            msgs.map(|payload| {
                out.clear();
                let _ = transcribe::wire::transcript(payload, &mut out);
                out.len()
            })
            .sum()
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One valid message (or short conversation) per arm, taken from the decoders' own tests.
    fn samples() -> Vec<Vec<u8>> {
        let transcribe = aws::eventstream::Message::event(
            "TranscriptEvent",
            "application/json",
            &br#"{"Transcript":{"Results":[{"StartTime":0.13,"EndTime":1.67,"IsPartial":true,"Alternatives":[{"Transcript":"Good day"}]}]}}"#[..],
        )
        .encode()
        .unwrap();
        assert!(!transcribe.contains(&0xFF), "a sample frame must not hold the separator");
        vec![
            br#"{"type":"Results","duration":1.0,"start":2.5,"is_final":true,"speech_final":true,"channel":{"alternatives":[{"transcript":"hello"}]}}"#.to_vec(),
            br#"{"type":"TurnInfo","event":"EndOfTurn","audio_window_start":0.5,"audio_window_end":1.7,"transcript":"Hello. What?","words":[]}"#.to_vec(),
            br#"{"type":"Turn","turn_order":0,"turn_is_formatted":true,"end_of_turn":true,"transcript":"Hi, my.","words":[{"start":500,"end":700,"text":"hi"}]}"#.to_vec(),
            br#"{"session_id":"s","created_at":"x","type":"transcript","data":{"is_final":true,"utterance":{"start":0.5,"end":1.7,"text":" Hello."}}}"#.to_vec(),
            br#"{"tokens":[{"text":"Hel","start_ms":600,"end_ms":700,"is_final":true},{"text":"<end>","is_final":true}],"total_audio_proc_ms":900}"#.to_vec(),
            br#"{"type":"transcript","request_id":"r","text":" Hello there.","is_final":true,"duration":1.5}"#.to_vec(),
            br#"{"message_type":"committed_transcript","text":"Hello there."}"#.to_vec(),
            b"Path: speech.phrase\r\nX-RequestId: 0123\r\nContent-Type: application/json\r\n\r\n{\"RecognitionStatus\":\"Success\",\"DisplayText\":\"Remind me.\",\"Offset\":0,\"Duration\":12300000}".to_vec(),
            transcribe,
            br#"{"Transcript":{"Results":[{"StartTime":0.1,"EndTime":1.6,"IsPartial":false,"Alternatives":[{"Transcript":"Good day"}]}]}}"#.to_vec(),
        ]
    }

    fn input(arm: usize, msgs: &[&[u8]]) -> Vec<u8> {
        let mut data = vec![u8::try_from(arm).unwrap()];
        data.extend(msgs.join(&0xFF));
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
                } else {
                    assert_eq!(n, 0, "{name} produced events from the {} sample", ARMS[arm]);
                }
            }
        }
        // The arm index wraps, so any first byte picks a decoder.
        assert!(wire(&input(ARMS.len(), &[&samples[0]])) > 0);
    }

    #[test]
    fn messages_are_fed_in_order_to_one_instance() {
        // AssemblyAI reports a turn's start once: the second message of the same turn adds none.
        let partial = br#"{"type":"Turn","turn_order":0,"end_of_turn":false,"transcript":"","words":[{"start":500,"end":700,"text":"hi"}]}"#;
        assert_eq!(wire(&input(2, &[partial])), 2);
        assert_eq!(wire(&input(2, &[partial, partial])), 3);
        // Cartesia: a final after a local finalize (empty message) still decodes.
        let fin = br#"{"type":"transcript","text":" Bye.","is_final":true,"duration":0.5}"#;
        assert_eq!(wire(&input(5, &[b"", fin, br#"{"type":"flush_done"}"#, fin])), 2);
    }

    #[test]
    fn hostile_messages_do_not_panic() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let hostile: Vec<Vec<u8>> = vec![
            vec![],
            b"{".to_vec(),
            br#"{"type":"Results","start":"#.to_vec(),
            br#"{"type":"Results","start":1e308,"duration":1e308,"is_final":true,"channel":{"alternatives":[{"transcript":"x"}]}}"#.to_vec(),
            br#"{"type":"Metadata","duration":-1e308}"#.to_vec(),
            br#"{"type":"Termination","audio_duration_seconds":1e308}"#.to_vec(),
            br#"{"type":"Turn","turn_order":18446744073709551615,"words":[{"start":1e308,"end":-1e308,"text":"x"}]}"#.to_vec(),
            br#"{"type":"transcript","text":"x","is_final":true,"duration":1e308}"#.to_vec(),
            br#"{"tokens":[{"text":"x","start_ms":1e308,"end_ms":1e308,"is_final":true}],"total_audio_proc_ms":18446744073709551615,"finished":true}"#.to_vec(),
            br#"{"type":"post_final_transcript","data":{"metadata":{"billing_time":1e308}}}"#.to_vec(),
            br#"{"type":"transcript","data":{"is_final":"yes","utterance":7}}"#.to_vec(),
            br#"{"message_type":7,"text":[]}"#.to_vec(),
            br#"{"type":"Error","error_code":99999999}"#.to_vec(),
            b"Path: speech.hypothesis\r\n\r\n{\"Text\":\"x\",\"Offset\":18446744073709551615,\"Duration\":18446744073709551615}".to_vec(),
            b"Path: speech.phrase\r\n\r\n{\"RecognitionStatus\":7}".to_vec(),
            deep.into_bytes(),
            vec![0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![0xC3],
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
