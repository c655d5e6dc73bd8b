//! Adapter ↔ simulator over real loopback sockets.

use super::AssemblyAi;
use crate::sim::{testdata, AssemblyAiSim, AssemblyAiSimConfig, Catalog};
use crate::{Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "aai-test-key-0123456789";

async fn sim(cfg: AssemblyAiSimConfig) -> AssemblyAiSim {
    AssemblyAiSim::start(AssemblyAiSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn catalog() -> Arc<Catalog> {
    let dir = testdata::catalog_dir();
    Arc::new(Catalog::from_dir(dir.path()).unwrap())
}

async fn connect(sim: &AssemblyAiSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    let req = SttRequest {
        base_url: &base,
        key: &key,
        model: "universal-streaming-english",
        sample_rate: testdata::RATE,
        language: "en",
    };
    AssemblyAi::new().connect(req).await
}

/// 20 ms frames, as the session sends them (the adapter gathers them into 50 ms messages).
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

#[tokio::test]
async fn a_known_utterance_is_one_formatted_final_and_usage_comes_from_termination() {
    let sim =
        sim(AssemblyAiSimConfig { catalog: catalog(), final_delay: Duration::from_millis(20), ..Default::default() })
            .await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.0));
    send_frames(&stream, &pcm).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert_eq!(events.first(), Some(&SttEvent::SpeechStarted { at_s: 0.5 }));
    assert!(events.iter().any(|e| matches!(e, SttEvent::Interim { .. })));
    let finals: Vec<_> = events.iter().filter(|e| matches!(e, SttEvent::Final { .. })).collect();
    assert!(
        matches!(finals.as_slice(), [SttEvent::Final { text, speech_final: true, .. }] if text == testdata::TEXT_A),
        "{events:?}"
    );
    // 2.7 s sent; Termination reports whole seconds.
    assert_eq!(events.last(), Some(&SttEvent::Usage { audio_ms: 3000, estimated: false }));
    assert_eq!(sim.audio_bytes_received(), pcm.len() as u64 * 2);
    assert_eq!(sim.seen_keys(), [KEY]);
}

#[tokio::test]
async fn a_bad_key_is_unauthorized_at_connect_and_check_key_agrees() {
    let sim = sim(AssemblyAiSimConfig::default()).await;
    let secret = "aai-wrong-SECRET-321";
    let err = connect(&sim, secret).await.err().unwrap();
    assert_eq!(err, SttError::Unauthorized);
    assert!(!format!("{err:?} {err}").contains(secret));
    let aai = AssemblyAi::new();
    let bad = SecretString::from(secret.to_string());
    assert_eq!(aai.check_key(&sim.base_url(), &bad).await, Err(SttError::Unauthorized));
    aai.check_key(&sim.base_url(), &SecretString::from(KEY.to_string())).await.unwrap();
}

#[tokio::test]
async fn finalize_forces_the_endpoint_of_speech_in_progress() {
    let sim = sim(AssemblyAiSimConfig { catalog: catalog(), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.3);
    pcm.extend(testdata::utterance_b());
    send_frames(&stream, &pcm).await;
    stream.audio.send(SttInput::Finalize).await.unwrap();
    let fin = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = stream.events.recv().await {
            if let SttEvent::Final { text, .. } = ev {
                return text;
            }
        }
        panic!("no final");
    })
    .await
    .unwrap();
    assert_eq!(fin, testdata::TEXT_B);
}

#[tokio::test]
async fn a_session_error_is_reported_then_estimated_usage() {
    let sim = sim(AssemblyAiSimConfig { fail_after_audio_ms: Some(500), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send_frames(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    match events.as_slice() {
        [SttEvent::Error(SttError::Closed { code: 3005, reason }), SttEvent::Usage { audio_ms, estimated: true }] => {
            assert!(reason.starts_with("Session Cancelled"), "{reason}");
            assert!((500..=1000).contains(audio_ms), "{audio_ms}");
        }
        other => panic!("{other:?}"),
    }
}
