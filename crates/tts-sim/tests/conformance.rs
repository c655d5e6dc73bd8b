//! One conformance suite for every TTS provider: each adapter of `tts::registry` against the
//! simulator `tts_sim::registry` starts for it, over real loopback sockets. Every case runs for
//! every provider; [`CASES`] holds only what providers legitimately differ in (models, rates,
//! how text is segmented and billed, the shape of a provider fault); a provider with two
//! protocols behind its models (Deepgram's Aura and Flux) has a case for each. What only one provider
//! does is tested beside its adapter (`crates/tts/tests/<provider>.rs`).

use secrecy::SecretString;
use simkit::{RunningSim, SimKeys, Tuning};
use std::time::Duration;
use tokio::time::timeout;
use tts::{Alignment, Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};

/// The turn every happy path speaks, sent as two pieces, a flush and a close.
const HAPPY: [&str; 2] = ["Hello there. ", "How are you today?"];
/// Long enough to pass [`FAULT_AT`] characters.
const FAULT_TEXT: &str = "A sentence long enough to pass the fault point. ";
const FAULT_AT: u64 = 10;
/// Audio length per character the suite tunes every simulator to.
const MS_PER_CHAR: u64 = 50;

/// What one provider does differently with the same inputs.
struct Case {
    name: &'static str,
    model: &'static str,
    /// A key in the provider's own format (Polly's is `ACCESS_KEY_ID:SECRET`).
    key: &'static str,
    /// Output rates the happy path runs at.
    rates: &'static [u32],
    /// A rate the adapter refuses before connecting.
    refused_rate: u32,
    /// Characters of [`HAPPY`] that become audio (sentence-segmenting providers do not voice
    /// the space between sentences).
    voiced: u64,
    /// Characters of [`HAPPY`] billed (Polly bills what it voices; the others what was sent).
    billed: u64,
    /// Characters of [`HAPPY`] the simulator counts as received.
    received: u64,
    /// How far the audio may be from `voiced × 50 ms`, in samples, at a rate.
    slack: fn(u32) -> u64,
    /// Which timings the adapter delivers with the audio.
    timing: Timing,
    /// The error a provider fault mid-stream surfaces as.
    fault: fn(&TtsError) -> bool,
    /// The key itself reaches the simulator (Polly's requests carry only a signature by it).
    key_travels: bool,
}

/// Character timings delivered with the audio.
#[derive(PartialEq)]
enum Timing {
    None,
    /// One start and duration per character.
    PerChar,
    /// Word timestamps spread over their characters (a word's characters may share a start).
    PerWord,
}

/// Whole 20 ms frame: providers whose pieces end on their own boundaries.
fn frame(rate: u32) -> u64 {
    u64::from(rate) / 50
}

fn exact(_: u32) -> u64 {
    0
}

const CASES: &[Case] = &[
    Case {
        name: "polly",
        model: "neural",
        key: "AKIATESTPOLLY0001:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        rates: &[16000, 8000, 24000],
        refused_rate: 11025,
        voiced: 30,
        billed: 30,
        received: 30,
        // 8 and 16 kHz come as Polly sends them; other rates are resampled (±12 ms).
        slack: |rate| if rate <= 16000 { 0 } else { u64::from(rate) * 12 / 1000 },
        timing: Timing::None,
        fault: |e| matches!(e, TtsError::Connect(_)),
        key_travels: false,
    },
    Case {
        name: "elevenlabs",
        model: "eleven_flash_v2_5",
        key: "sk-sim-good-0123456789",
        rates: &[16000, 8000, 22050, 24000, 44100],
        refused_rate: 11025,
        voiced: 31,
        billed: 31,
        // The adapter appends one separator space.
        received: 32,
        slack: frame,
        timing: Timing::PerChar,
        fault: |e| matches!(e, TtsError::Closed { code: 1011, .. }),
        key_travels: true,
    },
    Case {
        name: "azure",
        model: "neural",
        key: "azure-tts-key-0123456789abcdef",
        rates: &[8000, 16000, 24000, 48000],
        refused_rate: 11025,
        voiced: 31,
        billed: 31,
        received: 31,
        slack: |_| 2,
        timing: Timing::None,
        fault: |e| *e == TtsError::Closed { code: 1011, reason: "Internal service error.".into() },
        key_travels: true,
    },
    Case {
        name: "xai",
        model: "grok-voice",
        key: "xai-sim-good-0123456789",
        rates: &[16000, 24000],
        refused_rate: 11025,
        voiced: 31,
        billed: 31,
        received: 31,
        slack: frame,
        timing: Timing::PerChar,
        fault: |e| matches!(e, TtsError::Provider { message } if message.contains("synthesis failed")),
        key_travels: true,
    },
    Case {
        name: "soniox",
        model: "tts-rt-v2",
        key: "soniox-sim-good-0123456789",
        rates: &[8000, 24000],
        refused_rate: 22050,
        voiced: 31,
        billed: 31,
        received: 31,
        slack: frame,
        timing: Timing::PerChar,
        fault: |e| matches!(e, TtsError::Provider { message } if message.starts_with("500")),
        key_travels: true,
    },
    Case {
        name: "cartesia",
        model: "sonic-3",
        key: "sk_car_sim-good-0123456789",
        rates: &[8000, 16000, 24000, 44100],
        refused_rate: 11025,
        voiced: 31,
        billed: 31,
        received: 31,
        slack: exact,
        timing: Timing::PerWord,
        fault: |e| *e == TtsError::Provider { message: "Internal Server Error: generation failed".into() },
        key_travels: true,
    },
    Case {
        name: "deepgram",
        model: "aura-2",
        key: "dg-sim-good-0123456789",
        rates: &[8000, 16000, 24000],
        refused_rate: 22050,
        voiced: 31,
        billed: 31,
        received: 31,
        slack: exact,
        timing: Timing::None,
        fault: |e| matches!(e, TtsError::Closed { code: 1011, .. }),
        key_travels: true,
    },
    // Flux TTS: the same provider's `/v2/speak`, chosen by the model.
    Case {
        name: "deepgram",
        model: "flux",
        key: "dg-sim-good-0123456789",
        rates: &[8000, 16000, 24000, 44100],
        refused_rate: 22050,
        voiced: 31,
        billed: 31,
        received: 31,
        slack: exact,
        timing: Timing::None,
        fault: |e| matches!(e, TtsError::Closed { code: 1011, .. }),
        key_travels: true,
    },
    Case {
        name: "rime",
        model: "mistv2",
        key: "rime-sim-good-0123456789",
        rates: &[8000, 16000, 22050, 24000, 44100],
        refused_rate: 11025,
        voiced: 30,
        billed: 31,
        received: 31,
        slack: exact,
        timing: Timing::PerWord,
        fault: |e| *e == TtsError::Provider { message: "internal server error".into() },
        key_travels: true,
    },
];

/// One provider's adapter and a fresh simulator for it.
struct Rig {
    case: &'static Case,
    tts: std::sync::Arc<dyn Tts>,
    keys: SimKeys,
    sim: Box<dyn RunningSim>,
}

fn tuning(fail_after_chars: Option<u64>) -> Tuning {
    Tuning {
        tts_first_audio: Duration::from_millis(10),
        tts_ms_per_char: MS_PER_CHAR as u32,
        tts_fail_after_chars: fail_after_chars,
        ..Tuning::default()
    }
}

impl Rig {
    async fn start(case: &'static Case, t: Tuning) -> Self {
        let tts = tts::registry::build(case.name).unwrap_or_else(|| panic!("{} is not registered", case.name));
        let (_, start) = tts_sim::registry::SIMS.iter().find(|(n, _)| *n == case.name).expect("a simulator");
        let keys = SimKeys::from(vec![case.key.to_string()]);
        let sim = start(keys.clone(), t).await.unwrap();
        Self { case, tts, keys, sim }
    }

    async fn connect(&self, key: &str, rate: u32) -> Result<TtsStream, TtsError> {
        let base = self.sim.base_url();
        let key = SecretString::from(key.to_string());
        let voice = tts::registry::default_voice(self.case.name).unwrap_or_default();
        self.tts
            .connect(TtsRequest { base_url: &base, key: &key, model: self.case.model, voice, sample_rate: rate })
            .await
    }

    fn stats(&self) -> &simkit::Stats {
        self.sim.stats().expect("every TTS simulator runs on simkit's server")
    }

    /// Waits until the simulator has seen every socket close.
    async fn wait_closed(&self, within: Duration) {
        let name = self.case.name;
        timeout(within, async {
            while self.stats().open_connections() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: the simulator saw no disconnect"));
    }
}

/// Every event until the adapter closes the channel.
async fn drain(stream: &mut TtsStream) -> Vec<TtsEvent> {
    let mut out = Vec::new();
    while let Some(ev) = timeout(Duration::from_secs(10), stream.events.recv()).await.expect("stream ended") {
        out.push(ev);
    }
    out
}

/// Audio bytes and the joined character timings of `events`.
fn audio(events: &[TtsEvent]) -> (u64, Alignment) {
    let mut bytes = 0;
    let mut al = Alignment::default();
    for ev in events {
        if let TtsEvent::Audio { pcm, alignment } = ev {
            assert_eq!(pcm.len() % 2, 0, "whole samples only");
            bytes += pcm.len() as u64;
            if let Some(a) = alignment {
                al.chars.extend(&a.chars);
                al.start_ms.extend(&a.start_ms);
                al.duration_ms.extend(&a.duration_ms);
            }
        }
    }
    (bytes, al)
}

fn usages(events: &[TtsEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| if let TtsEvent::Usage { characters } = e { Some(*characters) } else { None })
        .collect()
}

fn first_error(events: &[TtsEvent]) -> Option<&TtsError> {
    events.iter().find_map(|e| if let TtsEvent::Error(e) = e { Some(e) } else { None })
}

/// Runs `case` for every provider at once, so the suite takes as long as its slowest provider.
async fn for_every_provider<F, Fut>(case: F)
where
    F: Fn(&'static Case) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runs: Vec<_> = CASES.iter().map(|c| (c, tokio::spawn(case(c)))).collect();
    let mut failed = Vec::new();
    for (c, run) in runs {
        if let Err(e) = run.await {
            failed.push(format!("{}/{}: {e}", c.name, c.model));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn every_registered_provider_has_a_case_and_a_simulator() {
    for name in tts::registry::names() {
        assert!(CASES.iter().any(|c| c.name == name), "{name} has no conformance case");
        assert!(tts_sim::registry::SIMS.iter().any(|(n, _)| *n == name), "{name} has no simulator");
    }
    for c in CASES {
        assert!(tts::registry::build(c.name).is_some(), "{} is not registered", c.name);
    }
}

#[tokio::test]
async fn happy_path_text_becomes_audio_of_its_length_then_done_and_usage() {
    for_every_provider(|c| async move {
        for &rate in c.rates {
            let rig = Rig::start(c, tuning(None)).await;
            let mut s = rig.connect(c.key, rate).await.unwrap();
            for piece in HAPPY {
                s.text.send(TtsInput::Text(piece.into())).await.unwrap();
            }
            s.text.send(TtsInput::Flush).await.unwrap();
            s.text.send(TtsInput::Close).await.unwrap();
            let events = drain(&mut s).await;
            let n = c.name;
            assert!(first_error(&events).is_none(), "{n} at {rate}: {events:?}");

            let (bytes, al) = audio(&events);
            let want = c.voiced * MS_PER_CHAR * u64::from(rate) / 1000;
            let got = bytes / 2;
            assert!(got.abs_diff(want) <= (c.slack)(rate), "{n} at {rate}: {got} samples, want {want}");
            let text = HAPPY.concat();
            if c.timing == Timing::None {
                assert!(al.chars.is_empty(), "{n}");
            } else {
                assert_eq!(al.chars.iter().collect::<String>(), text, "{n}: the timings rebuild the text");
                let last = (c.voiced - 1) * MS_PER_CHAR;
                assert_eq!(al.start_ms.last().map(|&s| u64::from(s)), Some(last), "{n}: stream-relative");
            }
            if c.timing == Timing::PerChar {
                assert!(al.start_ms.windows(2).all(|w| w[0] < w[1]), "{n}: increasing: {:?}", al.start_ms);
                assert_eq!(al.duration_ms.iter().max().map(|&d| u64::from(d)), Some(MS_PER_CHAR), "{n}");
            } else {
                assert!(al.start_ms.windows(2).all(|w| w[0] <= w[1]), "{n}: {:?}", al.start_ms);
            }

            let done = events.iter().position(|e| *e == TtsEvent::Done).unwrap_or_else(|| panic!("{n}: no Done"));
            let last_audio = events.iter().rposition(|e| matches!(e, TtsEvent::Audio { .. }));
            assert!(last_audio.is_some_and(|a| a < done), "{n}: Done follows the audio");
            let usage = usages(&events);
            assert_eq!(usage.len(), 2, "{n}: one usage for the flush, one final: {events:?}");
            assert!(usage.windows(2).all(|w| w[0] <= w[1]), "{n}: usage is cumulative: {usage:?}");
            assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: c.billed }), "{n}: {events:?}");
            assert_eq!(rig.stats().received_total(), c.received, "{n}");
            assert!(rig.sim.seen_keys().iter().all(|k| k == c.key), "{n}");
            assert!(!rig.sim.seen_keys().is_empty(), "{n}");
        }
    })
    .await;
}

#[tokio::test]
async fn refused_key_is_unauthorized_never_echoed_and_a_key_added_later_works() {
    for_every_provider(|c| async move {
        let rig = Rig::start(c, tuning(None)).await;
        let n = c.name;
        // Polly keys are `ACCESS_KEY_ID:SECRET` (one with an unknown access key id).
        let bad = if n == "polly" { "AKIATESTPOLLY0002:wrong-SECRET-9876" } else { "sk-wrong-SECRET-9876" };
        // Refused at the handshake, or (providers that authenticate in-band) as the first event.
        let refusal = match rig.connect(bad, 16000).await {
            Err(e) => {
                assert_eq!(rig.stats().connections(), 0, "{n}: refused before a socket opened");
                e
            }
            Ok(mut s) => {
                s.text.send(TtsInput::Text("Hello.".into())).await.unwrap();
                s.text.send(TtsInput::Close).await.unwrap();
                let events = drain(&mut s).await;
                assert!(matches!(events.last(), Some(TtsEvent::Usage { .. })), "{n}: {events:?}");
                assert!(!events.iter().any(|e| matches!(e, TtsEvent::Audio { .. })), "{n}");
                first_error(&events).cloned().unwrap_or_else(|| panic!("{n}: no refusal in {events:?}"))
            }
        };
        assert_eq!(refusal, TtsError::Unauthorized, "{n}");
        assert!(!format!("{refusal} {refusal:?}").contains("9876"), "{n}: the key is never echoed");

        let base = rig.sim.base_url();
        let checked = rig.tts.check_key(&base, &SecretString::from(bad.to_string())).await;
        assert_eq!(checked, Err(TtsError::Unauthorized), "{n}: check_key");
        assert_eq!(rig.tts.check_key(&base, &SecretString::from(c.key.to_string())).await, Ok(()), "{n}");
        // Every key presented, in order (connect, check, check), where the key itself travels.
        let seen: &[&str] = if c.key_travels { &[bad, bad, c.key] } else { &[c.key] };
        assert_eq!(rig.sim.seen_keys(), seen, "{n}");
        assert_eq!(rig.stats().received_total(), 0, "{n}: nothing refused or checked is voiced");

        // A key accepted while running (a BYOK key saved mid-test) works from then on.
        rig.keys.add(bad);
        assert_eq!(rig.tts.check_key(&base, &SecretString::from(bad.to_string())).await, Ok(()), "{n}");
    })
    .await;
}

#[tokio::test]
async fn an_unsupported_rate_is_refused_before_connecting() {
    for_every_provider(|c| async move {
        let rig = Rig::start(c, tuning(None)).await;
        let refused = rig.connect(c.key, c.refused_rate).await.err();
        assert_eq!(refused, Some(TtsError::UnsupportedSampleRate(c.refused_rate)), "{}", c.name);
        assert_eq!(rig.stats().connections(), 0, "{}", c.name);
        assert!(rig.sim.seen_keys().is_empty(), "{}", c.name);
    })
    .await;
}

#[tokio::test]
async fn a_fault_mid_stream_is_a_typed_error_then_usage_and_no_done() {
    for_every_provider(|c| async move {
        let rig = Rig::start(c, tuning(Some(FAULT_AT))).await;
        let mut s = rig.connect(c.key, 24000.min(*c.rates.iter().max().unwrap_or(&16000))).await.unwrap();
        s.text.send(TtsInput::Text(FAULT_TEXT.into())).await.unwrap();
        s.text.send(TtsInput::Flush).await.unwrap();
        let events = drain(&mut s).await;
        let n = c.name;
        let err = first_error(&events).unwrap_or_else(|| panic!("{n}: no error in {events:?}"));
        assert!((c.fault)(err), "{n}: {err:?}");
        assert_eq!(events.iter().filter(|e| matches!(e, TtsEvent::Error(_))).count(), 1, "{n}: {events:?}");
        assert!(!events.contains(&TtsEvent::Done), "{n}: {events:?}");
        let billed = if n == "polly" { FAULT_TEXT.trim_end() } else { FAULT_TEXT }.chars().count() as u64;
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: billed }), "{n}: {events:?}");
    })
    .await;
}

#[tokio::test]
async fn an_idle_stream_closes_cleanly_with_zero_usage() {
    for_every_provider(|c| async move {
        let rig = Rig::start(c, tuning(None)).await;
        let TtsStream { text, mut events } = rig.connect(c.key, 16000).await.unwrap();
        drop(text);
        let mut got = Vec::new();
        while let Some(ev) = timeout(Duration::from_secs(3), events.recv()).await.expect("ended") {
            got.push(ev);
        }
        let n = c.name;
        assert!(!got.iter().any(|e| matches!(e, TtsEvent::Audio { .. } | TtsEvent::Error(_))), "{n}: {got:?}");
        assert_eq!(got.last(), Some(&TtsEvent::Usage { characters: 0 }), "{n}: {got:?}");
        rig.wait_closed(Duration::from_millis(500)).await;
        assert_eq!(rig.stats().received_total(), 0, "{n}");
    })
    .await;
}

#[tokio::test]
async fn dropping_the_stream_mid_generation_closes_the_socket_promptly() {
    for_every_provider(|c| async move {
        let rig = Rig::start(c, tuning(None)).await;
        let mut s = rig.connect(c.key, 16000).await.unwrap();
        let long = "This is a long answer that the caller will interrupt halfway through. ";
        s.text.send(TtsInput::Text(long.into())).await.unwrap();
        s.text.send(TtsInput::Flush).await.unwrap();
        loop {
            match timeout(Duration::from_secs(5), s.events.recv()).await.unwrap() {
                Some(TtsEvent::Audio { .. }) => break,
                Some(TtsEvent::Usage { .. }) => {}
                other => panic!("{}: unexpected {other:?}", c.name),
            }
        }
        assert_eq!(rig.stats().open_connections(), 1, "{}", c.name);
        drop(s); // barge-in
        rig.wait_closed(Duration::from_millis(500)).await;
        assert!(rig.stats().received_total() > 0, "{}", c.name);
    })
    .await;
}
