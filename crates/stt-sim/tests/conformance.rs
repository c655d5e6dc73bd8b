//! One conformance suite for every STT provider: each adapter from `stt::registry` against its
//! simulator from `stt_sim::registry`, over real loopback sockets. The table says how each
//! provider reports what the suite provokes (a refused key, a fault mid-stream, an idle close,
//! usage); the cases are the same for all. Provider-specific behaviour is in the sections at the
//! end.

use std::sync::Arc;
use std::time::Duration;
use stt::{Stt, SttError, SttEvent, SttInput, SttStream};
use stt_sim::client::{self, finals, ms_of, speech, usages};
use stt_sim::testdata::{self, TEXT_A, TEXT_B};
use stt_sim::{Catalog, RunningSim, SimConfig, SimKeys};

/// How one provider behaves under the suite.
struct Case {
    /// Adapter and simulator name in the registries.
    provider: &'static str,
    model: &'static str,
    language: &'static str,
    key: &'static str,
    bad_key: &'static str,
    /// The adapter's report of the simulator's injected fault.
    fault: fn(&SttError) -> bool,
    /// The adapter's report of the simulator closing an idle stream.
    idle: fn(&SttError) -> bool,
    /// Usage is the provider's own figure (else counted locally, `estimated`).
    provider_usage: bool,
    /// How far reported usage may be from the audio sent (whole-second billing).
    usage_slack_ms: u64,
    /// A refused key is refused after the upgrade, so the upgrade counts as a connection.
    refuses_in_band: bool,
    /// Speech start is reported.
    speech_started: bool,
    /// Interim results are reported.
    interims: bool,
    /// `speech_final` of the final a `Finalize` flushes; `None`: not supported.
    finalize: Option<bool>,
}

fn closed(code: u16, reason: &'static str) -> impl Fn(&SttError) -> bool {
    move |e| matches!(e, SttError::Closed { code: c, reason: r } if *c == code && r.starts_with(reason))
}

const CASES: &[Case] = &[
    Case {
        provider: "deepgram",
        model: "nova-3",
        language: "en",
        key: "dg-test-key-0123456789",
        bad_key: "dg-wrong-key-SECRET-987",
        fault: |e| closed(1011, "NET-0000")(e),
        idle: |e| closed(1011, "NET-0001")(e),
        provider_usage: true,
        usage_slack_ms: 1,
        refuses_in_band: false,
        speech_started: true,
        interims: true,
        finalize: Some(false),
    },
    Case {
        provider: "deepgram",
        model: "flux-general-en",
        language: "en",
        key: "dg-flux-key-0123456789",
        bad_key: "dg-wrong-SECRET-555",
        fault: |e| closed(1011, "INTERNAL_SERVER_ERROR")(e),
        idle: |e| closed(1011, "NET-0001")(e),
        provider_usage: false,
        usage_slack_ms: 0,
        refuses_in_band: false,
        speech_started: true,
        interims: true,
        finalize: Some(true),
    },
    Case {
        provider: "assemblyai",
        model: "universal-streaming-english",
        language: "en",
        key: "aai-test-key-0123456789",
        bad_key: "aai-wrong-SECRET-321",
        fault: |e| closed(3005, "Session Cancelled")(e),
        idle: |e| closed(1011, "idle timeout")(e),
        provider_usage: true,
        usage_slack_ms: 500,
        refuses_in_band: true,
        speech_started: true,
        interims: true,
        finalize: Some(true),
    },
    Case {
        provider: "soniox",
        model: "stt-rt-v5",
        language: "en",
        key: "sx-test-key-0123456789",
        bad_key: "sx-wrong-SECRET-777",
        fault: |e| closed(503, "Cannot continue request")(e),
        idle: |e| closed(408, "No audio received")(e),
        provider_usage: true,
        usage_slack_ms: 0,
        refuses_in_band: true,
        speech_started: true,
        interims: true,
        finalize: Some(false),
    },
    Case {
        provider: "azure",
        model: "real-time",
        language: "en",
        key: "azure-test-key-0123456789abcdef",
        bad_key: "azure-wrong-key-SECRET-987",
        fault: |e| closed(1011, "Internal service error.")(e),
        idle: |e| closed(1011, "idle timeout")(e),
        provider_usage: false,
        usage_slack_ms: 0,
        refuses_in_band: false,
        speech_started: true,
        interims: true,
        finalize: Some(false),
    },
    Case {
        provider: "cartesia",
        model: "ink-whisper",
        language: "en",
        key: "sk_car_test-0123456789",
        bad_key: "sk_car_wrong-SECRET",
        fault: |e| matches!(e, SttError::Protocol(m) if m.contains("Internal Server Error")),
        idle: |e| closed(1011, "idle timeout")(e),
        provider_usage: true,
        // The sum of every result's rounded duration.
        usage_slack_ms: 20,
        refuses_in_band: false,
        speech_started: false,
        interims: false,
        finalize: Some(false),
    },
    Case {
        provider: "elevenlabs",
        model: "scribe_v2_realtime",
        language: "en-US",
        key: "sk_el-test-key-0123456789",
        bad_key: "sk_wrong-SECRET-987",
        fault: |e| matches!(e, SttError::Protocol(m) if m.contains("transcriber_error")),
        idle: |e| closed(1011, "idle timeout")(e),
        provider_usage: false,
        usage_slack_ms: 0,
        refuses_in_band: false,
        speech_started: false,
        interims: true,
        finalize: Some(false),
    },
    Case {
        provider: "gladia",
        model: "solaria-1",
        language: "en-US",
        key: "gladia-test-key-0123456789",
        bad_key: "gladia-wrong-SECRET",
        fault: |e| matches!(e, SttError::Protocol(m) if m.contains("Internal server error")),
        idle: |e| closed(1011, "idle timeout")(e),
        provider_usage: true,
        usage_slack_ms: 0,
        refuses_in_band: false,
        speech_started: true,
        interims: true,
        finalize: None,
    },
    Case {
        provider: "transcribe",
        model: "standard",
        language: "en",
        key: "AKIATESTTRANSCRIBE01:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        bad_key: "AKIATESTTRANSCRIBE01:wrong-SECRET-value",
        fault: |e| matches!(e, SttError::Protocol(m) if m.starts_with("InternalFailureException")),
        idle: |e| matches!(e, SttError::Protocol(m) if m.starts_with("BadRequestException")),
        provider_usage: false,
        usage_slack_ms: 0,
        refuses_in_band: false,
        speech_started: false,
        interims: true,
        finalize: None,
    },
];

/// A case's adapter and a running simulator configured by `cfg` (its keys: the case's key).
struct Rig {
    case: &'static Case,
    stt: Arc<dyn Stt>,
    sim: Box<dyn RunningSim>,
    keys: SimKeys,
}

impl Rig {
    async fn start(case: &'static Case, cfg: SimConfig) -> Self {
        let keys = SimKeys::from(vec![case.key.to_string()]);
        let start = stt_sim::registry::start_fn(case.provider).expect("a simulator");
        let sim = start(SimConfig { keys: keys.clone(), ..cfg }).await.unwrap();
        Self { case, stt: stt::registry::build(case.provider).expect("an adapter"), sim, keys }
    }

    async fn connect(&self, key: &str) -> Result<SttStream, SttError> {
        client::connect(self.stt.as_ref(), &self.sim.base_url(), key, self.case.model, self.case.language).await
    }

    async fn open(&self) -> SttStream {
        self.connect(self.case.key).await.unwrap_or_else(|e| panic!("{}: {e}", self.name()))
    }

    fn name(&self) -> String {
        format!("{} {}", self.case.provider, self.case.model)
    }

    fn stats(&self) -> &simkit::Stats {
        self.sim.stats().expect("simulators run on simkit's server")
    }
}

/// Runs `f` for every case at once.
async fn each<F, Fut>(f: F)
where
    F: Fn(&'static Case) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    futures::future::join_all(CASES.iter().map(f)).await;
}

fn catalog() -> Arc<Catalog> {
    let dir = testdata::catalog_dir();
    Arc::new(Catalog::from_dir(dir.path()).unwrap())
}

/// A's lexical form (lower case, no punctuation), what Azure's hypotheses carry.
const LEXICAL_A: &str = "hello what are your opening hours";

/// The single usage event closes the stream; audio within the case's slack; no error before it.
fn assert_usage(rig: &Rig, events: &[SttEvent], sent_ms: u64) {
    let name = rig.name();
    assert_eq!(usages(events).len(), 1, "{name}: one usage: {events:?}");
    match events.last() {
        Some(SttEvent::Usage { audio_ms, estimated }) => {
            assert!(audio_ms.abs_diff(sent_ms) <= rig.case.usage_slack_ms, "{name}: {audio_ms} ms for {sent_ms} ms");
            assert_eq!(*estimated, !rig.case.provider_usage, "{name}: estimated");
        }
        other => panic!("{name}: {other:?}"),
    }
    assert!(!events.iter().any(|e| matches!(e, SttEvent::Error(_))), "{name}: {events:?}");
}

#[test]
fn every_registered_provider_has_a_case_and_a_simulator() {
    for name in stt::registry::names() {
        assert!(CASES.iter().any(|c| c.provider == name), "{name} has no conformance case");
        assert!(stt_sim::registry::start_fn(name).is_some(), "{name} has no simulator");
    }
}

/// Happy path: a recorded call from `assets/calls/`, transcribed into its sidecar's text.
#[tokio::test]
async fn a_recorded_call_comes_back_as_its_transcript_and_usage() {
    let calls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/calls");
    let catalog = Arc::new(Catalog::from_dir(&calls).unwrap());
    let (mut pcm, rate) = media::wav::read_wav(calls.join("simple.wav")).unwrap();
    assert_eq!(rate, testdata::RATE);
    pcm.extend(testdata::silence(1.0));
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(calls.join("simple.json")).unwrap()).unwrap();
    let text = sidecar["utterances"][0]["text"].as_str().unwrap();
    let (pcm, catalog) = (&pcm, &catalog);
    each(|case| async move {
        let cfg = SimConfig { catalog: catalog.clone(), final_delay: Duration::from_millis(50), ..Default::default() };
        let rig = Rig::start(case, cfg).await;
        let mut stream = rig.open().await;
        client::send(&stream, pcm).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.audio.send(SttInput::Close).await.unwrap();
        let events = client::drain(&mut stream).await;
        let said: Vec<&str> = finals(&events).into_iter().map(|(t, _)| t).filter(|t| !t.is_empty()).collect();
        assert_eq!(said.join(" "), text, "{}: {events:?}", rig.name());
        assert_usage(&rig, &events, ms_of(pcm));
        // The last message may be padded to a provider's minimum (AssemblyAI: 50 ms).
        let (received, sent) = (rig.stats().received_total(), pcm.len() as u64 * 2);
        assert!((sent..sent + 1600).contains(&received), "{}: {received} bytes for {sent}", rig.name());
        assert!(rig.sim.seen_keys().iter().any(|k| k == case.key), "{}", rig.name());
    })
    .await;
}

/// The synthetic utterance A: speech start, interims that prefix it, one endpointed final.
#[tokio::test]
async fn a_known_utterance_is_one_endpointed_final() {
    each(|case| async move {
        let cfg = SimConfig { catalog: catalog(), final_delay: Duration::from_millis(50), ..Default::default() };
        let rig = Rig::start(case, cfg).await;
        let mut stream = rig.open().await;
        let pcm = speech(testdata::utterance_a(), 0.5, 1.0);
        client::send(&stream, &pcm).await;
        let mut events = client::until_final(&mut stream).await;
        stream.audio.send(SttInput::Close).await.unwrap();
        events.extend(client::drain(&mut stream).await);
        let name = rig.name();
        if case.speech_started {
            assert_eq!(events.first(), Some(&SttEvent::SpeechStarted { at_s: 0.5 }), "{name}: {events:?}");
        }
        if case.interims {
            assert!(
                events.iter().any(|e| matches!(e, SttEvent::Interim { text, .. }
                    if !text.is_empty() && (TEXT_A.starts_with(text.as_str()) || LEXICAL_A.starts_with(text.as_str())))),
                "{name}: {events:?}"
            );
        }
        assert_eq!(finals(&events), [(TEXT_A, true)], "{name}: {events:?}");
        assert_usage(&rig, &events, ms_of(&pcm));
        assert_eq!(rig.stats().received_total(), pcm.len() as u64 * 2, "{name}");
        assert_eq!(rig.sim.seen_keys(), [case.key], "{name}");
    })
    .await;
}

#[tokio::test]
async fn finalize_flushes_speech_in_progress() {
    each(|case| async move {
        let Some(speech_final) = case.finalize else { return };
        let rig = Rig::start(case, SimConfig { catalog: catalog(), ..Default::default() }).await;
        let mut stream = rig.open().await;
        let mut pcm = testdata::silence(0.3);
        pcm.extend(testdata::utterance_b()); // no trailing silence: speech still in progress
        client::send(&stream, &pcm).await;
        stream.audio.send(SttInput::Finalize).await.unwrap();
        let mut events = client::until_final(&mut stream).await;
        stream.audio.send(SttInput::Close).await.unwrap();
        events.extend(client::drain(&mut stream).await);
        assert_eq!(finals(&events), [(TEXT_B, speech_final)], "{}: {events:?}", rig.name());
        assert!(!events.iter().any(|e| matches!(e, SttEvent::Error(_))), "{}: {events:?}", rig.name());
    })
    .await;
}

#[tokio::test]
async fn a_refused_key_is_unauthorized_without_echoing_it() {
    each(|case| async move {
        let rig = Rig::start(case, SimConfig::default()).await;
        let name = rig.name();
        let err = rig.connect(case.bad_key).await.err().unwrap();
        assert_eq!(err, SttError::Unauthorized, "{name}");
        assert_eq!(err.code(), "stt_unauthorized");
        assert!(!format!("{err} {err:?}").contains(case.bad_key), "{name}");
        assert_eq!(rig.stats().connections(), usize::from(case.refuses_in_band), "{name}");
        let base = rig.sim.base_url();
        assert_eq!(client::check_key(rig.stt.as_ref(), &base, case.bad_key).await, Err(SttError::Unauthorized));
        assert_eq!(client::check_key(rig.stt.as_ref(), &base, case.key).await, Ok(()), "{name}");
    })
    .await;
}

#[tokio::test]
async fn a_fault_mid_stream_is_an_error_then_estimated_usage() {
    each(|case| async move {
        let rig = Rig::start(case, SimConfig { fail_after_audio_ms: Some(600), ..Default::default() }).await;
        let mut stream = rig.open().await;
        client::send(&stream, &testdata::silence(1.0)).await;
        let events = client::drain(&mut stream).await;
        match events.as_slice() {
            [SttEvent::Error(e), SttEvent::Usage { audio_ms, estimated: true }] => {
                assert!((case.fault)(e), "{}: {e:?}", rig.name());
                assert!((600..=1000).contains(audio_ms), "{}: {audio_ms}", rig.name());
            }
            other => panic!("{}: {other:?}", rig.name()),
        }
    })
    .await;
}

#[tokio::test]
async fn an_idle_stream_is_closed_by_the_provider() {
    each(|case| async move {
        let cfg = SimConfig { idle_timeout: Some(Duration::from_millis(300)), ..Default::default() };
        let rig = Rig::start(case, cfg).await;
        let mut stream = rig.open().await;
        let events = client::drain(&mut stream).await;
        match events.as_slice() {
            [SttEvent::Error(e), SttEvent::Usage { audio_ms: 0, estimated: true }] => {
                assert!((case.idle)(e), "{}: {e:?}", rig.name())
            }
            other => panic!("{}: {other:?}", rig.name()),
        }
    })
    .await;
}

/// Usage: dropping the audio sender ends the stream like `Close`, billed for what was sent.
#[tokio::test]
async fn dropping_the_sender_reports_the_usage_of_what_was_sent() {
    each(|case| async move {
        let rig = Rig::start(case, SimConfig::default()).await;
        let mut stream = rig.open().await;
        client::send(&stream, &testdata::silence(1.0)).await;
        stream.audio = tokio::sync::mpsc::channel(1).0; // drops the real sender
        let events = client::drain(&mut stream).await;
        assert_eq!(events.len(), 1, "{}: {events:?}", rig.name());
        assert_usage(&rig, &events, 1000);
    })
    .await;
}

/// Provider-specific behaviour the table does not cover.
mod deepgram {
    use super::*;

    fn case(model: &str) -> &'static Case {
        CASES.iter().find(|c| c.provider == "deepgram" && c.model == model).unwrap()
    }

    #[tokio::test]
    async fn results_carry_times_and_an_utterance_end() {
        let cfg = SimConfig { catalog: catalog(), final_delay: Duration::from_millis(100), ..Default::default() };
        let rig = Rig::start(case("nova-3"), cfg).await;
        let mut stream = rig.open().await;
        client::send(&stream, &speech(testdata::utterance_a(), 0.5, 1.5)).await;
        let events = client::until_final(&mut stream).await;
        assert!(matches!(events.last(), Some(SttEvent::Final { end_s, .. }) if *end_s > 1.7), "{events:?}");
        // 1.5 s of trailing silence > utterance_end_ms (1000): UtteranceEnd follows the final.
        let next = tokio::time::timeout(Duration::from_secs(5), stream.events.recv()).await.unwrap();
        assert_eq!(next, Some(SttEvent::UtteranceEnd { last_word_end_s: 1.7 }));
        assert_eq!(rig.sim.seen_keys(), [rig.case.key]);
    }

    #[tokio::test]
    async fn unknown_speech_is_a_placeholder_billed_by_the_provider() {
        let rig = Rig::start(case("nova-3"), SimConfig { catalog: catalog(), ..Default::default() }).await;
        let mut stream = rig.open().await;
        let pcm = speech(testdata::unknown(), 0.5, 1.5);
        client::send(&stream, &pcm).await;
        stream.audio.send(SttInput::Close).await.unwrap();
        let events = client::drain(&mut stream).await;
        assert_eq!(finals(&events), [("[speech 1.4 s]", true)]);
        assert_usage(&rig, &events, ms_of(&pcm));
        let (audio_ms, _) = usages(&events)[0];
        assert!(audio_ms.abs_diff(ms_of(&pcm)) * 100 <= ms_of(&pcm), "within 1%: {audio_ms}");
    }

    #[tokio::test]
    async fn a_refused_key_is_not_recorded() {
        let rig = Rig::start(case("nova-3"), SimConfig::default()).await;
        assert_eq!(rig.connect("dg-wrong").await.err(), Some(SttError::Unauthorized));
        assert!(rig.sim.seen_keys().is_empty());
    }

    #[tokio::test]
    async fn keepalive_holds_an_idle_stream_open() {
        let cfg = SimConfig { idle_timeout: Some(Duration::from_millis(1000)), ..Default::default() };
        let rig = Rig::start(case("nova-3"), cfg).await;
        let dg = stt::Deepgram::new().with_keepalive_after(Duration::from_millis(200));
        let mut stream = client::connect(&dg, &rig.sim.base_url(), rig.case.key, "nova-3", "en").await.unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(rig.stats().open_connections(), 1);
        stream.audio.send(SttInput::Close).await.unwrap();
        assert_eq!(client::drain(&mut stream).await, [SttEvent::Usage { audio_ms: 0, estimated: false }]);
    }

    #[tokio::test]
    async fn keys_added_at_runtime_are_accepted_and_recorded() {
        let rig = Rig::start(case("nova-3"), SimConfig::default()).await;
        assert_eq!(rig.connect("late-key").await.err(), Some(SttError::Unauthorized));
        rig.keys.add("late-key");
        let _a = rig.open().await;
        let _b = rig.connect("late-key").await.unwrap();
        assert_eq!(rig.sim.seen_keys(), [rig.case.key, "late-key"]);
        assert_eq!(rig.stats().connections(), 2);
    }

    #[tokio::test]
    async fn flux_finals_start_at_the_turn() {
        let cfg = SimConfig { catalog: catalog(), final_delay: Duration::from_millis(50), ..Default::default() };
        let rig = Rig::start(case("flux-general-en"), cfg).await;
        let mut stream = rig.open().await;
        client::send(&stream, &speech(testdata::utterance_a(), 0.5, 1.0)).await;
        let events = client::until_final(&mut stream).await;
        assert!(matches!(events.last(), Some(SttEvent::Final { start_s, .. }) if *start_s == 0.5), "{events:?}");
        assert_eq!(rig.sim.seen_keys(), [rig.case.key]);
    }

    #[tokio::test]
    async fn flux_fatal_error_after_400_ms() {
        let rig =
            Rig::start(case("flux-general-en"), SimConfig { fail_after_audio_ms: Some(400), ..Default::default() })
                .await;
        let mut stream = rig.open().await;
        client::send(&stream, &testdata::silence(1.0)).await;
        match client::drain(&mut stream).await.as_slice() {
            [SttEvent::Error(SttError::Closed { code: 1011, reason }), SttEvent::Usage { audio_ms, estimated: true }] =>
            {
                assert_eq!(reason, "INTERNAL_SERVER_ERROR");
                assert!((400..=1000).contains(audio_ms), "{audio_ms}");
            }
            other => panic!("{other:?}"),
        }
    }
}

mod assemblyai {
    use super::*;

    #[tokio::test]
    async fn termination_bills_whole_seconds() {
        let case = CASES.iter().find(|c| c.provider == "assemblyai").unwrap();
        let cfg = SimConfig { catalog: catalog(), final_delay: Duration::from_millis(20), ..Default::default() };
        let rig = Rig::start(case, cfg).await;
        let mut stream = rig.open().await;
        client::send(&stream, &speech(testdata::utterance_a(), 0.5, 1.0)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.audio.send(SttInput::Close).await.unwrap();
        let events = client::drain(&mut stream).await;
        // 2.7 s sent; Termination reports whole seconds.
        assert_eq!(events.last(), Some(&SttEvent::Usage { audio_ms: 3000, estimated: false }));
    }
}

mod azure {
    use super::*;
    use stt_sim::{AzureSttSim, SimServer};

    const KEY: &str = "azure-test-key-0123456789abcdef";

    async fn sim(cfg: SimConfig) -> SimServer<AzureSttSim> {
        stt_sim::start(SimConfig { keys: vec![KEY.to_string()].into(), catalog: catalog(), ..cfg }).await.unwrap()
    }

    async fn open(sim: &SimServer<AzureSttSim>) -> SttStream {
        client::connect(&stt::Azure::new(), &sim.base_url(), KEY, "real-time", "en").await.unwrap()
    }

    #[tokio::test]
    async fn every_presented_key_is_recorded() {
        let sim = sim(SimConfig::default()).await;
        let (azure, base, secret) = (stt::Azure::new(), sim.base_url(), "azure-wrong-key-SECRET-987");
        assert_eq!(client::connect(&azure, &base, secret, "real-time", "en").await.err(), Some(SttError::Unauthorized));
        assert_eq!(client::check_key(&azure, &base, secret).await, Err(SttError::Unauthorized));
        assert_eq!(client::check_key(&azure, &base, KEY).await, Ok(()));
        assert_eq!(sim.seen_keys(), [secret, secret, KEY]);
    }

    #[tokio::test]
    async fn a_phrase_has_its_times_then_close_ends_the_turn() {
        let sim = sim(SimConfig { final_delay: Duration::from_millis(100), ..Default::default() }).await;
        let mut stream = open(&sim).await;
        let pcm = speech(testdata::utterance_a(), 0.5, 1.5);
        client::send(&stream, &pcm).await;
        let events = client::until_final(&mut stream).await;
        assert_eq!(
            events.last(),
            Some(&SttEvent::Final { text: TEXT_A.into(), start_s: 0.5, end_s: 1.7, speech_final: true })
        );
        stream.audio.send(SttInput::Close).await.unwrap();
        let rest = client::drain(&mut stream).await;
        assert_eq!(
            rest,
            [SttEvent::UtteranceEnd { last_word_end_s: 1.7 }, SttEvent::Usage { audio_ms: 3200, estimated: true }]
        );
        assert_eq!(sim.received(), pcm.len() as u64 * 2);
        assert_eq!(sim.service().turns(), 1);
    }

    #[tokio::test]
    async fn audio_after_finalize_continues_in_a_new_turn() {
        let sim = sim(SimConfig::default()).await;
        let mut stream = open(&sim).await;
        let mut pcm = testdata::silence(0.3);
        pcm.extend(testdata::utterance_b());
        client::send(&stream, &pcm).await;
        stream.audio.send(SttInput::Finalize).await.unwrap();
        client::send(&stream, &testdata::silence(0.5)).await; // held until turn.end, then a new turn
        client::until_final(&mut stream).await;
        stream.audio.send(SttInput::Close).await.unwrap();
        let rest = client::drain(&mut stream).await;
        assert_eq!(rest.last(), Some(&SttEvent::Usage { audio_ms: 2800, estimated: true }));
        assert_eq!(sim.service().turns(), 2);
        assert_eq!(sim.received(), 2800 * 32);
    }
}

mod cartesia {
    use super::*;

    #[tokio::test]
    async fn an_endpointed_then_a_finalized_utterance() {
        let case = CASES.iter().find(|c| c.provider == "cartesia").unwrap();
        let cfg = SimConfig { catalog: catalog(), final_delay: Duration::from_millis(50), ..Default::default() };
        let rig = Rig::start(case, cfg).await;
        let mut stream = rig.open().await;
        let mut pcm = speech(testdata::utterance_a(), 0.5, 1.0);
        pcm.extend(testdata::utterance_b());
        client::send(&stream, &pcm).await;
        tokio::time::sleep(Duration::from_millis(200)).await; // the endpointed final of A lands first
        stream.audio.send(SttInput::Finalize).await.unwrap();
        stream.audio.send(SttInput::Close).await.unwrap();
        let events = client::drain(&mut stream).await;
        assert_eq!(finals(&events), [(TEXT_A, true), (TEXT_B, false)], "{events:?}");
        assert_usage(&rig, &events, ms_of(&pcm));
        let (audio_ms, _) = usages(&events)[0];
        assert!(audio_ms.abs_diff(ms_of(&pcm)) <= 5, "{audio_ms}");
    }
}

mod gladia {
    use super::*;
    use stt_sim::GladiaSim;

    const KEY: &str = "gladia-test-key-0123456789";

    #[tokio::test]
    async fn sessions_are_used_once_and_finals_span_their_words() {
        let cfg = SimConfig {
            keys: vec![KEY.to_string()].into(),
            catalog: catalog(),
            final_delay: Duration::from_millis(50),
            ..Default::default()
        };
        let sim = stt_sim::start::<GladiaSim>(cfg).await.unwrap();
        let gladia = stt::Gladia::new();
        let err = client::connect(&gladia, &sim.base_url(), "gladia-wrong", "solaria-1", "en-US").await.err();
        assert_eq!((err, sim.connections(), sim.service().pending_sessions()), (Some(SttError::Unauthorized), 0, 0));
        let mut stream = client::connect(&gladia, &sim.base_url(), KEY, "solaria-1", "en-US").await.unwrap();
        client::send(&stream, &speech(testdata::utterance_a(), 0.5, 1.0)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        stream.audio.send(SttInput::Close).await.unwrap();
        let events = client::drain(&mut stream).await;
        match events.iter().find(|e| matches!(e, SttEvent::Final { .. })) {
            Some(SttEvent::Final { start_s, end_s, .. }) => {
                assert!((start_s - 0.5).abs() < 0.05 && (end_s - 1.7).abs() < 0.05, "{start_s} {end_s}");
            }
            other => panic!("{other:?}"),
        }
        assert!(events.iter().any(|e| matches!(e, SttEvent::UtteranceEnd { .. })));
        assert_eq!(sim.seen_keys(), [KEY]);
        assert_eq!(sim.service().pending_sessions(), 0);
    }
}

mod transcribe {
    use super::*;

    fn case() -> &'static Case {
        CASES.iter().find(|c| c.provider == "transcribe").unwrap()
    }

    #[tokio::test]
    async fn a_wrong_secret_or_unknown_key_is_refused_at_the_upgrade() {
        let rig = Rig::start(case(), SimConfig::default()).await;
        for bad in ["AKIAUNKNOWN:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "no-colon"] {
            let err = rig.connect(bad).await.err().unwrap();
            assert_eq!(err, SttError::Unauthorized, "{bad}");
            assert!(!format!("{err:?}").contains("SECRET"));
        }
        assert_eq!(rig.stats().connections(), 0);
        let stt = rig.stt.as_ref();
        assert_eq!(client::check_key(stt, &rig.sim.base_url(), "AKIAX:nope").await, Err(SttError::Unauthorized));
    }

    #[tokio::test]
    async fn a_refused_upgrade_carries_the_aws_error_shape() {
        let rig = Rig::start(case(), SimConfig::default()).await;
        let mut url = rig.sim.base_url();
        url.set_scheme("http").unwrap();
        url.set_path("/stream-transcription-websocket");
        url.set_query(Some("language-code=en-US"));
        let resp = reqwest::get(url).await.unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        let error_type = resp.headers()["x-amzn-ErrorType"].to_str().unwrap();
        assert!(error_type.starts_with("MissingAuthenticationTokenException"));
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["__type"], "MissingAuthenticationTokenException");
    }
}
