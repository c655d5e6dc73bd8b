//! Adapter ↔ simulator over real loopback sockets.

use super::Soniox;
use crate::sim::{testdata, Catalog, SonioxSim, SonioxSimConfig};
use crate::{Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "sx-test-key-0123456789";

async fn sim(cfg: SonioxSimConfig) -> SonioxSim {
    SonioxSim::start(SonioxSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn catalog() -> Arc<Catalog> {
    let dir = testdata::catalog_dir();
    Arc::new(Catalog::from_dir(dir.path()).unwrap())
}

async fn connect(sim: &SonioxSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    let req =
        SttRequest { base_url: &base, key: &key, model: "stt-rt-v5", sample_rate: testdata::RATE, language: "en" };
    Soniox::new().connect(req).await
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

#[tokio::test]
async fn tokens_become_interims_and_an_endpointed_final_with_provider_usage() {
    let sim =
        sim(SonioxSimConfig { catalog: catalog(), final_delay: Duration::from_millis(20), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.0));
    send_frames(&stream, &pcm).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert_eq!(events.first(), Some(&SttEvent::SpeechStarted { at_s: 0.5 }));
    assert!(events.iter().any(|e| matches!(e, SttEvent::Interim { text, .. }
        if !text.is_empty() && testdata::TEXT_A.starts_with(text.as_str()))));
    let finals: Vec<_> = events.iter().filter(|e| matches!(e, SttEvent::Final { .. })).collect();
    assert!(
        matches!(finals.as_slice(), [SttEvent::Final { text, speech_final: true, .. }] if text == testdata::TEXT_A),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&SttEvent::Usage { audio_ms: 2700, estimated: false }));
    assert_eq!(sim.seen_keys(), [KEY]);
}

#[tokio::test]
async fn a_bad_key_fails_connect_and_check_key() {
    let sim = sim(SonioxSimConfig::default()).await;
    let secret = "sx-wrong-SECRET-777";
    let err = connect(&sim, secret).await.err().unwrap();
    assert_eq!(err, SttError::Unauthorized);
    assert!(!format!("{err:?} {err}").contains(secret));
    let sx = Soniox::new();
    assert_eq!(
        sx.check_key(&sim.base_url(), &SecretString::from(secret.to_string())).await,
        Err(SttError::Unauthorized)
    );
    sx.check_key(&sim.base_url(), &SecretString::from(KEY.to_string())).await.unwrap();
}

#[tokio::test]
async fn finalize_flushes_speech_in_progress_as_a_final() {
    let sim = sim(SonioxSimConfig { catalog: catalog(), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.3);
    pcm.extend(testdata::utterance_b());
    send_frames(&stream, &pcm).await;
    stream.audio.send(SttInput::Finalize).await.unwrap();
    let fin = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = stream.events.recv().await {
            if let SttEvent::Final { text, speech_final, .. } = ev {
                return (text, speech_final);
            }
        }
        panic!("no final");
    })
    .await
    .unwrap();
    assert_eq!(fin, (testdata::TEXT_B.to_string(), false));
}

#[tokio::test]
async fn a_mid_stream_error_is_reported_then_estimated_usage() {
    let sim = sim(SonioxSimConfig { fail_after_audio_ms: Some(500), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send_frames(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    match events.as_slice() {
        [SttEvent::Error(SttError::Closed { code: 503, reason }), SttEvent::Usage { audio_ms, estimated: true }] => {
            assert!(reason.starts_with("Cannot continue request"), "{reason}");
            assert!((500..=1000).contains(audio_ms), "{audio_ms}");
        }
        other => panic!("{other:?}"),
    }
}
