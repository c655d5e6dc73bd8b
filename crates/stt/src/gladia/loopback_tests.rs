//! Adapter ↔ simulator over real loopback sockets (HTTP session init, then the WebSocket).

use crate::sim::{testdata, Catalog, GladiaSim, GladiaSimConfig};
use crate::{Gladia, Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "gladia-test-key-0123456789";

async fn sim(cfg: GladiaSimConfig) -> GladiaSim {
    let dir = testdata::catalog_dir();
    let catalog = Arc::new(Catalog::from_dir(dir.path()).unwrap());
    GladiaSim::start(GladiaSimConfig { keys: vec![KEY.to_string()].into(), catalog, ..cfg }).await.unwrap()
}

async fn connect(sim: &GladiaSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    let req =
        SttRequest { base_url: &base, key: &key, model: "solaria-1", sample_rate: testdata::RATE, language: "en-US" };
    Gladia::new().connect(req).await
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

#[tokio::test]
async fn a_known_utterance_comes_back_and_usage_is_the_billed_duration() {
    let sim = sim(GladiaSimConfig { final_delay: Duration::from_millis(50), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.0));
    send(&stream, &pcm).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert_eq!(events.first(), Some(&SttEvent::SpeechStarted { at_s: 0.5 }), "{events:?}");
    assert!(events
        .iter()
        .any(|e| matches!(e, SttEvent::Interim { text, .. } if testdata::TEXT_A.starts_with(text.as_str()))));
    let finals: Vec<_> = events.iter().filter(|e| matches!(e, SttEvent::Final { .. })).collect();
    match finals.as_slice() {
        [SttEvent::Final { text, speech_final: true, start_s, end_s }] => {
            assert_eq!(text, testdata::TEXT_A);
            assert!((start_s - 0.5).abs() < 0.05 && (end_s - 1.7).abs() < 0.05, "{start_s} {end_s}");
        }
        other => panic!("{other:?}"),
    }
    assert!(events.iter().any(|e| matches!(e, SttEvent::UtteranceEnd { .. })));
    let sent_ms = pcm.len() as u64 * 1000 / u64::from(testdata::RATE);
    assert_eq!(events.last(), Some(&SttEvent::Usage { audio_ms: sent_ms, estimated: false }));
    assert_eq!(sim.seen_keys(), [KEY]);
    assert_eq!(sim.pending_sessions(), 0);
}

#[tokio::test]
async fn a_bad_key_is_refused_at_session_init_and_by_check_key() {
    let sim = sim(GladiaSimConfig::default()).await;
    let secret = "gladia-wrong-SECRET";
    let err = connect(&sim, secret).await.err().unwrap();
    assert_eq!(err, SttError::Unauthorized);
    assert!(!format!("{err:?} {err}").contains(secret));
    assert_eq!((sim.connections(), sim.pending_sessions()), (0, 0));
    let base = sim.base_url();
    let g = Gladia::new();
    assert_eq!(g.check_key(&base, &SecretString::from(secret.to_string())).await, Err(SttError::Unauthorized));
    assert_eq!(g.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
}

#[tokio::test]
async fn a_provider_error_mid_stream_is_an_error_then_estimated_usage() {
    let sim = sim(GladiaSimConfig { fail_after_audio_ms: Some(600), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    match events.as_slice() {
        [SttEvent::Error(SttError::Protocol(msg)), SttEvent::Usage { audio_ms, estimated: true }] => {
            assert!(msg.contains("Internal server error"), "{msg}");
            assert!((600..=1000).contains(audio_ms), "{audio_ms}");
        }
        other => panic!("{other:?}"),
    }
}
