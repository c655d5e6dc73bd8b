//! Adapter ↔ simulator over real loopback sockets.

use crate::sim::{testdata, Catalog, ElevenLabsSim, ElevenLabsSimConfig};
use crate::{ElevenLabs, Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk_el-test-key-0123456789";

async fn sim(cfg: ElevenLabsSimConfig) -> ElevenLabsSim {
    let dir = testdata::catalog_dir();
    let catalog = Arc::new(Catalog::from_dir(dir.path()).unwrap());
    ElevenLabsSim::start(ElevenLabsSimConfig { keys: vec![KEY.to_string()].into(), catalog, ..cfg }).await.unwrap()
}

async fn connect(sim: &ElevenLabsSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    let req = SttRequest {
        base_url: &base,
        key: &key,
        model: "scribe_v2_realtime",
        sample_rate: testdata::RATE,
        language: "en-US",
    };
    ElevenLabs::new().connect(req).await
}

async fn send(stream: &SttStream, pcm: &[i16]) {
    for frame in pcm.chunks(320) {
        let _ = stream.audio.send(SttInput::Audio(Bytes::from(testdata::to_bytes(frame)))).await;
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

fn finals(events: &[SttEvent]) -> Vec<(&str, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Final { text, speech_final, .. } => Some((text.as_str(), *speech_final)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_known_utterance_is_committed_by_the_vad_and_usage_is_counted() {
    let sim = sim(ElevenLabsSimConfig { final_delay: Duration::from_millis(50), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.0));
    send(&stream, &pcm).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert!(events
        .iter()
        .any(|e| matches!(e, SttEvent::Interim { text, .. } if testdata::TEXT_A.starts_with(text.as_str()))));
    assert_eq!(finals(&events), [(testdata::TEXT_A, true)]);
    let sent_ms = pcm.len() as u64 * 1000 / u64::from(testdata::RATE);
    assert_eq!(events.last(), Some(&SttEvent::Usage { audio_ms: sent_ms, estimated: true }));
    assert_eq!(sim.seen_keys(), [KEY]);
}

#[tokio::test]
async fn finalize_commits_speech_in_progress() {
    let sim = sim(ElevenLabsSimConfig::default()).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.3);
    pcm.extend(testdata::utterance_b());
    send(&stream, &pcm).await;
    stream.audio.send(SttInput::Finalize).await.unwrap();
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert_eq!(finals(&events), [(testdata::TEXT_B, false)]);
    assert!(!events.iter().any(|e| matches!(e, SttEvent::Error(_))));
}

#[tokio::test]
async fn a_bad_key_is_refused_by_auth_error_and_check_key() {
    let sim = sim(ElevenLabsSimConfig::default()).await;
    let secret = "sk_wrong-SECRET-987";
    let err = connect(&sim, secret).await.err().unwrap();
    assert_eq!(err, SttError::Unauthorized);
    assert!(!format!("{err:?}").contains(secret));
    assert_eq!(sim.connections(), 0);
    let el = ElevenLabs::new();
    let base = sim.base_url();
    assert_eq!(el.check_key(&base, &SecretString::from(secret.to_string())).await, Err(SttError::Unauthorized));
    assert_eq!(el.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
}

#[tokio::test]
async fn a_transcriber_error_mid_stream_is_an_error_then_estimated_usage() {
    let sim = sim(ElevenLabsSimConfig { fail_after_audio_ms: Some(600), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    match events.as_slice() {
        [SttEvent::Error(SttError::Protocol(msg)), SttEvent::Usage { audio_ms, estimated: true }] => {
            assert!(msg.contains("transcriber_error"), "{msg}");
            assert!((600..=1000).contains(audio_ms), "{audio_ms}");
        }
        other => panic!("{other:?}"),
    }
}
