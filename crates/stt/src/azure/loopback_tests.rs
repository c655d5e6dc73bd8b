//! Adapter ↔ simulator over real loopback sockets.

use crate::sim::{testdata, AzureSttSim, AzureSttSimConfig, Catalog};
use crate::{Azure, Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "azure-test-key-0123456789abcdef";

async fn sim(cfg: AzureSttSimConfig) -> AzureSttSim {
    AzureSttSim::start(AzureSttSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn catalog() -> Arc<Catalog> {
    let dir = testdata::catalog_dir();
    Arc::new(Catalog::from_dir(dir.path()).unwrap())
}

async fn connect(sim: &AzureSttSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    Azure::new()
        .connect(SttRequest {
            base_url: &base,
            key: &key,
            model: "real-time",
            sample_rate: testdata::RATE,
            language: "en",
        })
        .await
}

async fn send_frames(stream: &SttStream, pcm: &[i16]) {
    for frame in pcm.chunks(320) {
        if stream.audio.send(SttInput::Audio(Bytes::from(testdata::to_bytes(frame)))).await.is_err() {
            return;
        }
    }
}

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

#[tokio::test]
async fn a_bad_key_is_refused_at_upgrade_and_by_check_key() {
    let sim = sim(AzureSttSimConfig::default()).await;
    let secret = "azure-wrong-key-SECRET-987";
    let err = connect(&sim, secret).await.err().unwrap();
    assert_eq!(err, SttError::Unauthorized);
    assert!(!err.to_string().contains(secret) && !format!("{err:?}").contains(secret));
    assert_eq!(sim.connections(), 0);

    let base = sim.base_url();
    let azure = Azure::new();
    assert_eq!(azure.check_key(&base, &SecretString::from(secret.to_string())).await, Err(SttError::Unauthorized));
    assert_eq!(azure.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
    assert_eq!(sim.seen_keys(), [secret, secret, KEY]);
}

#[tokio::test]
async fn a_known_utterance_comes_back_as_its_transcript_then_usage_on_close() {
    let sim =
        sim(AzureSttSimConfig { catalog: catalog(), final_delay: Duration::from_millis(100), ..Default::default() })
            .await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.5));
    send_frames(&stream, &pcm).await;
    let events = until_final(&mut stream).await;
    assert_eq!(events.first(), Some(&SttEvent::SpeechStarted { at_s: 0.5 }));
    assert!(events.iter().any(|e| matches!(e, SttEvent::Interim { text, .. }
        if !text.is_empty() && "hello what are your opening hours".starts_with(text.as_str()))));
    assert_eq!(
        events.last(),
        Some(&SttEvent::Final { text: testdata::TEXT_A.into(), start_s: 0.5, end_s: 1.7, speech_final: true })
    );
    stream.audio.send(SttInput::Close).await.unwrap();
    let rest = drain(&mut stream).await;
    assert_eq!(
        rest,
        [SttEvent::UtteranceEnd { last_word_end_s: 1.7 }, SttEvent::Usage { audio_ms: 3200, estimated: true }]
    );
    assert_eq!(sim.audio_bytes_received(), pcm.len() as u64 * 2);
    assert_eq!(sim.turns(), 1);
}

#[tokio::test]
async fn finalize_ends_the_turn_and_audio_continues_in_a_new_one() {
    let sim = sim(AzureSttSimConfig { catalog: catalog(), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.3);
    pcm.extend(testdata::utterance_b());
    send_frames(&stream, &pcm).await; // speech still going: no trailing silence
    stream.audio.send(SttInput::Finalize).await.unwrap();
    send_frames(&stream, &testdata::silence(0.5)).await; // held until turn.end, then a new turn
    let events = until_final(&mut stream).await;
    assert!(
        matches!(events.last(), Some(SttEvent::Final { text, speech_final: false, .. }) if text == testdata::TEXT_B),
        "{events:?}"
    );
    stream.audio.send(SttInput::Close).await.unwrap();
    let rest = drain(&mut stream).await;
    assert_eq!(rest.last(), Some(&SttEvent::Usage { audio_ms: 2800, estimated: true }));
    assert_eq!(sim.turns(), 2);
    assert_eq!(sim.audio_bytes_received(), 2800 * 32);
}

#[tokio::test]
async fn a_service_fault_is_an_error_then_estimated_usage() {
    let sim = sim(AzureSttSimConfig { fail_after_audio_ms: Some(600), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send_frames(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    assert_eq!(
        events.first(),
        Some(&SttEvent::Error(SttError::Closed { code: 1011, reason: "Internal service error.".into() }))
    );
    match events.as_slice() {
        [_, SttEvent::Usage { audio_ms, estimated: true }] => assert!((600..=1000).contains(audio_ms), "{audio_ms}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_sender_closes_like_close() {
    let sim = sim(AzureSttSimConfig::default()).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send_frames(&stream, &testdata::silence(1.0)).await;
    stream.audio = tokio::sync::mpsc::channel(1).0;
    assert_eq!(drain(&mut stream).await, [SttEvent::Usage { audio_ms: 1000, estimated: true }]);
}
