//! Flux adapter ↔ the Deepgram simulator's `/v2/listen` over real loopback sockets.

use crate::sim::{testdata, Catalog, DeepgramSim, DeepgramSimConfig};
use crate::{Deepgram, Stt, SttError, SttEvent, SttInput, SttRequest, SttStream};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "dg-flux-key-0123456789";

async fn sim(cfg: DeepgramSimConfig) -> DeepgramSim {
    DeepgramSim::start(DeepgramSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn catalog() -> Arc<Catalog> {
    let dir = testdata::catalog_dir();
    Arc::new(Catalog::from_dir(dir.path()).unwrap())
}

async fn connect(sim: &DeepgramSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    Deepgram::new()
        .connect(SttRequest {
            base_url: &base,
            key: &key,
            model: "flux-general-en",
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

#[tokio::test]
async fn flux_turns_map_to_speech_started_interims_and_one_final() {
    let sim =
        sim(DeepgramSimConfig { catalog: catalog(), final_delay: Duration::from_millis(50), ..Default::default() })
            .await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.0));
    send_frames(&stream, &pcm).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert_eq!(events.first(), Some(&SttEvent::SpeechStarted { at_s: 0.5 }));
    assert!(events.iter().any(|e| matches!(e, SttEvent::Interim { text, .. }
        if !text.is_empty() && testdata::TEXT_A.starts_with(text.as_str()))));
    let finals: Vec<_> = events.iter().filter(|e| matches!(e, SttEvent::Final { .. })).collect();
    assert!(
        matches!(finals.as_slice(), [SttEvent::Final { text, speech_final: true, start_s, .. }]
            if text == testdata::TEXT_A && *start_s == 0.5),
        "{events:?}"
    );
    // Flux reports no usage: counted locally from what was sent.
    let sent_ms = pcm.len() as u64 * 1000 / u64::from(testdata::RATE);
    assert_eq!(events.last(), Some(&SttEvent::Usage { audio_ms: sent_ms, estimated: true }));
    assert!(!events.iter().any(|e| matches!(e, SttEvent::Error(_))));
    assert_eq!(sim.seen_keys(), [KEY]);
}

#[tokio::test]
async fn flux_refuses_a_bad_key_at_the_upgrade() {
    let sim = sim(DeepgramSimConfig::default()).await;
    let secret = "dg-wrong-SECRET-555";
    let err = connect(&sim, secret).await.err().unwrap();
    assert_eq!(err, SttError::Unauthorized);
    assert!(!format!("{err:?}").contains(secret));
    assert_eq!(sim.connections(), 0);
    let key = SecretString::from(KEY.to_string());
    Deepgram::new().check_key(&sim.base_url(), &key).await.unwrap();
}

#[tokio::test]
async fn flux_finalize_sends_silence_that_ends_the_turn() {
    let sim =
        sim(DeepgramSimConfig { catalog: catalog(), final_delay: Duration::from_millis(20), ..Default::default() })
            .await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let mut pcm = testdata::silence(0.3);
    pcm.extend(testdata::utterance_b());
    send_frames(&stream, &pcm).await; // no trailing silence: the turn is still open
    stream.audio.send(SttInput::Finalize).await.unwrap();
    let fin = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = stream.events.recv().await {
            if let SttEvent::Final { text, speech_final, .. } = ev {
                return (text, speech_final);
            }
        }
        panic!("stream ended without a final");
    })
    .await
    .unwrap();
    assert_eq!(fin, (testdata::TEXT_B.to_string(), true));
}

#[tokio::test]
async fn flux_fatal_error_is_an_error_then_estimated_usage() {
    let sim = sim(DeepgramSimConfig { fail_after_audio_ms: Some(400), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send_frames(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    match events.as_slice() {
        [SttEvent::Error(SttError::Closed { code: 1011, reason }), SttEvent::Usage { audio_ms, estimated: true }] => {
            assert_eq!(reason, "INTERNAL_SERVER_ERROR");
            assert!((400..=1000).contains(audio_ms), "{audio_ms}");
        }
        other => panic!("{other:?}"),
    }
}
