//! Adapter ↔ simulator over real loopback sockets.

use crate::sim::{testdata, CartesiaSim, CartesiaSimConfig, Catalog};
use crate::{Cartesia, Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sk_car_test-0123456789";

async fn sim(cfg: CartesiaSimConfig) -> CartesiaSim {
    let dir = testdata::catalog_dir();
    let catalog = Arc::new(Catalog::from_dir(dir.path()).unwrap());
    CartesiaSim::start(CartesiaSimConfig { keys: vec![KEY.to_string()].into(), catalog, ..cfg }).await.unwrap()
}

async fn connect(sim: &CartesiaSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    let req =
        SttRequest { base_url: &base, key: &key, model: "ink-whisper", sample_rate: testdata::RATE, language: "en" };
    Cartesia::new().connect(req).await
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
async fn utterances_come_back_and_usage_is_the_reported_durations() {
    let sim = sim(CartesiaSimConfig { final_delay: Duration::from_millis(50), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.0));
    pcm.extend(testdata::utterance_b());
    send(&stream, &pcm).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // the endpointed final of A lands first
    stream.audio.send(SttInput::Finalize).await.unwrap();
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert_eq!(finals(&events), [(testdata::TEXT_A, true), (testdata::TEXT_B, false)], "{events:?}");
    let sent_ms = pcm.len() as u64 * 1000 / u64::from(testdata::RATE);
    match events.last() {
        Some(SttEvent::Usage { audio_ms, estimated: false }) => assert!(audio_ms.abs_diff(sent_ms) <= 5, "{audio_ms}"),
        other => panic!("{other:?}"),
    }
    assert!(!events.iter().any(|e| matches!(e, SttEvent::Error(_))));
}

#[tokio::test]
async fn a_bad_key_is_refused_at_the_upgrade_and_by_check_key() {
    let sim = sim(CartesiaSimConfig::default()).await;
    let secret = "sk_car_wrong-SECRET";
    let err = connect(&sim, secret).await.err().unwrap();
    assert_eq!(err, SttError::Unauthorized);
    assert!(!format!("{err:?} {err}").contains(secret));
    assert_eq!(sim.connections(), 0);
    let base = sim.base_url();
    let c = Cartesia::new();
    assert_eq!(c.check_key(&base, &SecretString::from(secret.to_string())).await, Err(SttError::Unauthorized));
    assert_eq!(c.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
}

#[tokio::test]
async fn a_provider_error_mid_stream_is_an_error_then_estimated_usage() {
    let sim = sim(CartesiaSimConfig { fail_after_audio_ms: Some(600), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    match events.as_slice() {
        [SttEvent::Error(SttError::Protocol(msg)), SttEvent::Usage { audio_ms, estimated: true }] => {
            assert!(msg.contains("Internal Server Error"), "{msg}");
            assert!((600..=1000).contains(audio_ms), "{audio_ms}");
        }
        other => panic!("{other:?}"),
    }
}
