//! Adapter ↔ simulator over real loopback sockets.

use crate::sim::{testdata, Catalog, DeepgramSim, DeepgramSimConfig};
use crate::{Deepgram, Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "dg-test-key-0123456789";

async fn sim(cfg: DeepgramSimConfig) -> DeepgramSim {
    let cfg = DeepgramSimConfig { keys: vec![KEY.to_string()].into(), ..cfg };
    DeepgramSim::start(cfg).await.unwrap()
}

fn catalog() -> Arc<Catalog> {
    let dir = testdata::catalog_dir();
    Arc::new(Catalog::from_dir(dir.path()).unwrap())
}

async fn connect(dg: &Deepgram, sim: &DeepgramSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    dg.connect(SttRequest { base_url: &base, key: &key, model: "nova-3", sample_rate: testdata::RATE, language: "en" })
        .await
}

/// Send `pcm` as 20 ms frames, as fast as the channel takes them.
async fn send_frames(stream: &SttStream, pcm: &[i16]) {
    for frame in pcm.chunks(320) {
        let bytes = Bytes::from(testdata::to_bytes(frame));
        if stream.audio.send(SttInput::Audio(bytes)).await.is_err() {
            return;
        }
    }
}

/// Every event until the stream ends (bounded so a hang fails the test).
async fn drain(stream: &mut SttStream) -> Vec<SttEvent> {
    let mut events = Vec::new();
    let collect = async {
        while let Some(ev) = stream.events.recv().await {
            events.push(ev);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect).await.expect("stream did not end");
    events
}

/// Events until the first final (bounded).
async fn until_final(stream: &mut SttStream) -> Vec<SttEvent> {
    let mut events = Vec::new();
    let collect = async {
        while let Some(ev) = stream.events.recv().await {
            let done = matches!(ev, SttEvent::Final { .. });
            events.push(ev);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect).await.expect("no final");
    events
}

fn speech(utterance: Vec<i16>) -> Vec<i16> {
    let mut pcm = testdata::silence(0.5);
    pcm.extend(utterance);
    pcm.extend(testdata::silence(1.5));
    pcm
}

#[tokio::test]
async fn a_bad_key_is_unauthorized_and_not_echoed() {
    let sim = sim(DeepgramSimConfig::default()).await;
    let secret = "dg-wrong-key-SECRET-987";
    let err = connect(&Deepgram::new(), &sim, secret).await.err().unwrap();
    assert_eq!(err, SttError::Unauthorized);
    assert_eq!(err.code(), "stt_unauthorized");
    assert!(!err.to_string().contains(secret) && !format!("{err:?}").contains(secret));
    assert_eq!(sim.connections(), 0);
    assert!(sim.seen_keys().is_empty());
}

#[tokio::test]
async fn a_known_utterance_comes_back_as_its_transcript() {
    let sim =
        sim(DeepgramSimConfig { catalog: catalog(), final_delay: Duration::from_millis(100), ..Default::default() })
            .await;
    let mut stream = connect(&Deepgram::new(), &sim, KEY).await.unwrap();
    send_frames(&stream, &speech(testdata::utterance_a())).await;
    let events = until_final(&mut stream).await;
    assert_eq!(events.first(), Some(&SttEvent::SpeechStarted { at_s: 0.5 }));
    assert!(events.iter().any(|e| matches!(e, SttEvent::Interim { text, .. }
        if !text.is_empty() && testdata::TEXT_A.starts_with(text.as_str()))));
    match events.last() {
        Some(SttEvent::Final { text, speech_final: true, end_s, .. }) => {
            assert_eq!(text, testdata::TEXT_A);
            assert!(*end_s > 1.7);
        }
        other => panic!("{other:?}"),
    }
    // 1.5 s of trailing silence > utterance_end_ms (1000): UtteranceEnd follows the final.
    let next = tokio::time::timeout(Duration::from_secs(5), stream.events.recv()).await.unwrap();
    assert_eq!(next, Some(SttEvent::UtteranceEnd { last_word_end_s: 1.7 }));
    assert_eq!(sim.seen_keys(), [KEY]);
}

#[tokio::test]
async fn unknown_speech_is_a_placeholder_and_close_reports_provider_usage() {
    let sim = sim(DeepgramSimConfig { catalog: catalog(), ..Default::default() }).await;
    let mut stream = connect(&Deepgram::new(), &sim, KEY).await.unwrap();
    let pcm = speech(testdata::unknown());
    send_frames(&stream, &pcm).await;
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    let finals: Vec<&str> = events
        .iter()
        .filter_map(|e| if let SttEvent::Final { text, .. } = e { Some(text.as_str()) } else { None })
        .collect();
    assert_eq!(finals, ["[speech 1.4 s]"]);
    let sent_ms = pcm.len() as u64 * 1000 / u64::from(testdata::RATE);
    match events.last() {
        Some(SttEvent::Usage { audio_ms, estimated: false }) => {
            assert!(audio_ms.abs_diff(sent_ms) * 100 <= sent_ms, "{audio_ms} vs {sent_ms}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events.iter().filter(|e| matches!(e, SttEvent::Usage { .. })).count(), 1);
    assert!(!events.iter().any(|e| matches!(e, SttEvent::Error(_))));
}

#[tokio::test]
async fn dropping_the_sender_closes_like_close() {
    let sim = sim(DeepgramSimConfig::default()).await;
    let mut stream = connect(&Deepgram::new(), &sim, KEY).await.unwrap();
    send_frames(&stream, &testdata::silence(1.0)).await;
    stream.audio = tokio::sync::mpsc::channel(1).0; // drops the real sender
    assert_eq!(drain(&mut stream).await, [SttEvent::Usage { audio_ms: 1000, estimated: false }]);
}

#[tokio::test]
async fn a_provider_fault_is_an_error_then_estimated_usage() {
    let sim = sim(DeepgramSimConfig { fail_after_audio_ms: Some(600), ..Default::default() }).await;
    let mut stream = connect(&Deepgram::new(), &sim, KEY).await.unwrap();
    send_frames(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    assert_eq!(events.first(), Some(&SttEvent::Error(SttError::Closed { code: 1011, reason: "NET-0000".into() })));
    match events.as_slice() {
        [_, SttEvent::Usage { audio_ms, estimated: true }] => assert!((600..=1000).contains(audio_ms), "{audio_ms}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_idle_stream_is_closed_by_the_provider() {
    let sim = sim(DeepgramSimConfig { idle_timeout: Duration::from_millis(300), ..Default::default() }).await;
    let mut stream = connect(&Deepgram::new(), &sim, KEY).await.unwrap();
    let events = drain(&mut stream).await;
    assert_eq!(
        events,
        [
            SttEvent::Error(SttError::Closed { code: 1011, reason: "NET-0001".into() }),
            SttEvent::Usage { audio_ms: 0, estimated: true },
        ]
    );
}

#[tokio::test]
async fn keepalive_holds_an_idle_stream_open() {
    let sim = sim(DeepgramSimConfig { idle_timeout: Duration::from_millis(1000), ..Default::default() }).await;
    let dg = Deepgram::new().with_keepalive_after(Duration::from_millis(200));
    let mut stream = connect(&dg, &sim, KEY).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sim.open_connections(), 1);
    stream.audio.send(SttInput::Close).await.unwrap();
    assert_eq!(drain(&mut stream).await, [SttEvent::Usage { audio_ms: 0, estimated: false }]);
}

#[tokio::test]
async fn keys_added_at_runtime_are_accepted_and_recorded() {
    let sim = sim(DeepgramSimConfig::default()).await;
    assert_eq!(connect(&Deepgram::new(), &sim, "late-key").await.err(), Some(SttError::Unauthorized));
    sim.keys().add("late-key");
    let _a = connect(&Deepgram::new(), &sim, KEY).await.unwrap();
    let _b = connect(&Deepgram::new(), &sim, "late-key").await.unwrap();
    assert_eq!(sim.seen_keys(), [KEY, "late-key"]);
    assert_eq!(sim.connections(), 2);
}

#[tokio::test]
async fn finalize_flushes_a_final_without_speech_final() {
    let sim = sim(DeepgramSimConfig { catalog: catalog(), ..Default::default() }).await;
    let mut stream = connect(&Deepgram::new(), &sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.3);
    pcm.extend(testdata::utterance_b());
    send_frames(&stream, &pcm).await; // speech still "in progress": no trailing silence
    stream.audio.send(SttInput::Finalize).await.unwrap();
    let events = until_final(&mut stream).await;
    assert!(
        matches!(events.last(), Some(SttEvent::Final { text, speech_final: false, .. }) if text == testdata::TEXT_B)
    );
}
