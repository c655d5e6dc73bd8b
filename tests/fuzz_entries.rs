//! The wire fuzz entry points (`stt::fuzz`, `tts::fuzz`, `llm::fuzz`), checked the way fuzzing
//! uses them: an input's first byte picks a decoder arm, the rest is its messages split on
//! `0xFF`. Every arm decodes its own sample and no other's, hostile messages never panic, state
//! carries across one input's messages, and the committed seeds (`fuzz/seeds/<target>/`) are
//! real conversations: each one that is not an error case decodes to something, so fuzzing
//! starts past the parsers' first checks, and every arm has a seed.

/// A wire fuzz target: its seed folder, its decoder arms, and its entry point.
struct WireTarget {
    seeds: &'static str,
    arms: &'static [&'static str],
    wire: fn(&[u8]) -> usize,
}

const STT: WireTarget = WireTarget { seeds: "stt_wire", arms: stt::fuzz::ARMS, wire: stt::fuzz::wire };
const TTS: WireTarget = WireTarget { seeds: "tts_wire", arms: tts::fuzz::ARMS, wire: tts::fuzz::wire };
const LLM: WireTarget = WireTarget { seeds: "llm_wire", arms: llm::fuzz::ARMS, wire: llm::fuzz::wire };
const TARGETS: [&WireTarget; 3] = [&STT, &TTS, &LLM];

impl WireTarget {
    /// Events `arm` made of `msgs`, sent as one input.
    fn decode(&self, arm: usize, msgs: &[&[u8]]) -> usize {
        let mut data = vec![u8::try_from(arm).unwrap()];
        data.extend(msgs.join(&0xFF));
        (self.wire)(&data)
    }

    /// Each arm decodes its own sample and no other arm does, unless `shared(sample's arm,
    /// other arm)` says the two spell that message alike; the arm index wraps.
    fn decodes_own_samples_only(&self, samples: &[&[u8]], shared: impl Fn(usize, usize) -> bool) {
        assert_eq!(samples.len(), self.arms.len(), "{}: a sample per arm", self.seeds);
        for (arm, sample) in samples.iter().enumerate() {
            for (other, name) in self.arms.iter().enumerate() {
                let n = self.decode(other, &[sample]);
                if other == arm {
                    assert!(n > 0, "{name} decoded nothing from its own sample");
                } else if !shared(arm, other) {
                    assert_eq!(n, 0, "{name} decoded the {} sample", self.arms[arm]);
                }
            }
        }
        assert!(self.decode(self.arms.len(), &[samples[0]]) > 0, "{}: the arm index wraps", self.seeds);
    }

    /// Every arm takes each hostile message alone, repeated, paired with each other one, and all
    /// of them in a row, without panicking; an empty input is no event.
    fn survives(&self, hostile: &[&[u8]]) {
        for arm in 0..self.arms.len() {
            for h in hostile {
                self.decode(arm, &[h]);
                self.decode(arm, &[h, h, b"", h]);
            }
            for a in hostile {
                for b in hostile {
                    self.decode(arm, &[a, b]);
                }
            }
            self.decode(arm, hostile);
        }
        assert_eq!((self.wire)(&[]), 0);
    }
}

/// Every target survives every hostile message of its own list, and JSON nested 10,000 deep
/// (bare, and as an SSE event).
#[test]
fn hostile_messages_do_not_panic() {
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let event = format!("data: {nested}\n\n");
    for (target, hostile) in [(&STT, stt_wire::HOSTILE), (&TTS, tts_wire::HOSTILE), (&LLM, llm_wire::HOSTILE)] {
        let mut all = hostile.to_vec();
        all.extend([nested.as_bytes(), event.as_bytes()]);
        target.survives(&all);
    }
}

/// Seed names ending so are error cases, which may decode to nothing.
const FAILURES: &[&str] = &["-error", "-exception", "-blocked", "-incomplete"];

#[test]
fn every_seed_decodes_and_every_arm_has_one() {
    for target in TARGETS {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target.seeds);
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let n = (target.wire)(&std::fs::read(&path).unwrap());
            assert!(
                FAILURES.iter().any(|s| name.ends_with(s)) || n > 0,
                "{}: seed {name} decoded nothing",
                target.seeds
            );
            seen += 1;
        }
        assert!(seen >= target.arms.len(), "{}: a seed per arm at least", target.seeds);
    }
}

/// Speech-to-text: one valid message (or short conversation) per arm, from the decoders' own tests.
mod stt_wire {
    use super::*;

    const TARGET: &WireTarget = &STT;

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

    #[test]
    fn messages_are_fed_in_order_to_one_instance() {
        // AssemblyAI reports a turn's start once: the second message of the same turn adds none.
        let partial = br#"{"type":"Turn","turn_order":0,"end_of_turn":false,"transcript":"","words":[{"start":500,"end":700,"text":"hi"}]}"#;
        assert_eq!(TARGET.decode(2, &[partial]), 2);
        assert_eq!(TARGET.decode(2, &[partial, partial]), 3);
        // Cartesia: a final after a local finalize (empty message) still decodes.
        let fin = br#"{"type":"transcript","text":" Bye.","is_final":true,"duration":0.5}"#;
        assert_eq!(TARGET.decode(5, &[b"", fin, br#"{"type":"flush_done"}"#, fin]), 2);
    }

    #[test]
    fn every_arm_decodes_its_own_sample_and_no_other() {
        TARGET.decodes_own_samples_only(&samples().iter().map(Vec::as_slice).collect::<Vec<_>>(), |_, _| false);
    }

    /// Messages a broken or hostile peer could send.
    pub const HOSTILE: &[&[u8]] = &[
        b"",
        b"{",
        br#"{"type":"Results","start":"#,
        br#"{"type":"Results","start":1e308,"duration":1e308,"is_final":true,"channel":{"alternatives":[{"transcript":"x"}]}}"#,
        br#"{"type":"Metadata","duration":-1e308}"#,
        br#"{"type":"Termination","audio_duration_seconds":1e308}"#,
        br#"{"type":"Turn","turn_order":18446744073709551615,"words":[{"start":1e308,"end":-1e308,"text":"x"}]}"#,
        br#"{"type":"transcript","text":"x","is_final":true,"duration":1e308}"#,
        br#"{"tokens":[{"text":"x","start_ms":1e308,"end_ms":1e308,"is_final":true}],"total_audio_proc_ms":18446744073709551615,"finished":true}"#,
        br#"{"type":"post_final_transcript","data":{"metadata":{"billing_time":1e308}}}"#,
        br#"{"type":"transcript","data":{"is_final":"yes","utterance":7}}"#,
        br#"{"message_type":7,"text":[]}"#,
        br#"{"type":"Error","error_code":99999999}"#,
        b"Path: speech.hypothesis\r\n\r\n{\"Text\":\"x\",\"Offset\":18446744073709551615,\"Duration\":18446744073709551615}",
        b"Path: speech.phrase\r\n\r\n{\"RecognitionStatus\":7}",
        &[0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0xC3],
    ];
}

/// Text-to-speech: one valid message per arm; some providers spell a message alike (twins).
mod tts_wire {
    use super::*;

    const TARGET: &WireTarget = &TTS;

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
        b"\x80\x81\x82\x83", // Flux audio too
    ];

    /// Arm pairs whose providers spell a message alike, so each decodes the other's sample:
    /// ElevenLabs and Soniox both send base64 `audio`, Cartesia and Rime both send `chunk`s,
    /// Deepgram's Aura and Flux sockets both send binary PCM.
    /// [`twins_are_told_apart`] checks each pair on a message only one of them takes.
    const TWINS: &[(usize, usize)] = &[(0, 5), (5, 0), (1, 3), (3, 1), (2, 8), (8, 2)];

    #[test]
    fn twins_are_told_apart() {
        let final_only: &[u8] = br#"{"isFinal":true}"#;
        let terminated: &[u8] = br#"{"terminated":true,"stream_id":"s1"}"#;
        assert_eq!((TARGET.decode(0, &[final_only]), TARGET.decode(5, &[final_only])), (1, 0));
        assert_eq!((TARGET.decode(0, &[terminated]), TARGET.decode(5, &[terminated])), (0, 1));
        // Rime names the context `contextId`, Cartesia `context_id`: each skips another context.
        let rime_other: &[u8] = br#"{"type":"chunk","data":"AQID","contextId":"other"}"#;
        let cartesia_other: &[u8] = br#"{"type":"chunk","data":"AQID","context_id":"other"}"#;
        assert_eq!((TARGET.decode(1, &[rime_other]), TARGET.decode(3, &[rime_other])), (1, 0));
        assert_eq!((TARGET.decode(1, &[cartesia_other]), TARGET.decode(3, &[cartesia_other])), (0, 1));
        // Flux answers a flush that found no turn with a warning, which ends a closing stream;
        // to Aura a warning is only a warning. (Aura decodes nothing Flux does not.)
        let no_turn: &[u8] = br#"{"type":"Warning","code":"NO_ACTIVE_SPEECH","description":"No active turn"}"#;
        assert_eq!((TARGET.decode(2, &[b"", no_turn]), TARGET.decode(8, &[b"", no_turn])), (0, 1));
    }

    #[test]
    fn state_carries_across_messages() {
        // Deepgram finishes on the `Flushed` that answers the last flush after end of input.
        let flushed: &[u8] = br#"{"type":"Flushed","sequence_id":0}"#;
        assert_eq!(TARGET.decode(2, &[flushed]), 0, "nothing asked to finish yet");
        assert_eq!(TARGET.decode(2, &[b"", flushed]), 1);
        // Binary frames are Aura's audio; Azure audio is a binary USP frame.
        assert_eq!(TARGET.decode(2, &[&[0x80, 0x81]]), 1);
        let mut frame = vec![0, 13]; // header block length, then the headers, then PCM
        frame.extend_from_slice(b"Path: audio\r\n\x80\x81");
        assert_eq!(TARGET.decode(6, &[&frame]), 1);
        let ssml = br#"<speak version="1.0"><voice name="en-US-AvaNeural">Hi</voice></speak>"#;
        assert_eq!(TARGET.decode(6, &[ssml]), 1);
    }

    #[test]
    fn every_arm_decodes_its_own_sample_and_no_other() {
        TARGET.decodes_own_samples_only(SAMPLES, |arm, other| TWINS.contains(&(arm, other)));
    }

    /// Messages a broken or hostile peer could send.
    pub const HOSTILE: &[&[u8]] = &[
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
    ];
}

/// Language models: one valid body per arm; the bare SSE framer (arm 5) reads every SSE body, and only Bedrock's (arm 4) is not one.
mod llm_wire {
    use super::*;

    const TARGET: &WireTarget = &LLM;

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

    #[test]
    fn chunks_split_anywhere_decode_alike() {
        for (arm, sample) in samples().iter().enumerate() {
            let whole = TARGET.decode(arm, &[sample]);
            let bytes: Vec<&[u8]> = sample.chunks(1).collect();
            assert_eq!(TARGET.decode(arm, &bytes), whole, "{} split at every byte", TARGET.arms[arm]);
        }
        // The end marker stops decoding: what follows `[DONE]` is never read.
        let after = br#"data: {"choices":[{"index":0,"delta":{"content":"late"}}]}

"#;
        assert_eq!(TARGET.decode(0, &[&samples()[0], after]), 1);
    }

    #[test]
    fn every_arm_decodes_its_own_sample_and_no_other() {
        TARGET.decodes_own_samples_only(&samples().iter().map(Vec::as_slice).collect::<Vec<_>>(), |arm, other| {
            other == 5 && arm != 4
        });
    }

    /// Messages a broken or hostile peer could send.
    pub const HOSTILE: &[&[u8]] = &[
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
    ];
}
