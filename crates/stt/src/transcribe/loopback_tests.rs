//! Adapter ↔ simulator over real loopback sockets.

use crate::sim::{testdata, Catalog, TranscribeSim, TranscribeSimConfig};
use crate::{Stt, SttError, SttEvent, SttInput, SttRequest, SttStream, Transcribe};
use bytes::Bytes;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "AKIATESTTRANSCRIBE01:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

async fn sim(cfg: TranscribeSimConfig) -> TranscribeSim {
    let cfg = TranscribeSimConfig { keys: vec![KEY.to_string()].into(), catalog: catalog(), ..cfg };
    TranscribeSim::start(cfg).await.unwrap()
}

fn catalog() -> Arc<Catalog> {
    let dir = testdata::catalog_dir();
    Arc::new(Catalog::from_dir(dir.path()).unwrap())
}

async fn connect(sim: &TranscribeSim, key: &str) -> Result<SttStream, SttError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    Transcribe::new()
        .connect(SttRequest {
            base_url: &base,
            key: &key,
            model: "standard",
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

fn speech(utterance: Vec<i16>) -> Vec<i16> {
    let mut pcm = testdata::silence(0.5);
    pcm.extend(utterance);
    pcm.extend(testdata::silence(1.0));
    pcm
}

#[tokio::test]
async fn a_known_utterance_comes_back_as_partials_then_its_final_and_usage() {
    let sim = sim(TranscribeSimConfig { final_delay: Duration::from_millis(50), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    let pcm = speech(testdata::utterance_a());
    send_frames(&stream, &pcm).await;
    stream.audio.send(SttInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert!(events.iter().any(|e| matches!(e, SttEvent::Interim { text, .. }
        if !text.is_empty() && testdata::TEXT_A.starts_with(text.as_str()))));
    let finals: Vec<_> = events.iter().filter(|e| matches!(e, SttEvent::Final { .. })).collect();
    assert!(
        matches!(finals.as_slice(), [SttEvent::Final { text, speech_final: true, .. }] if text == testdata::TEXT_A),
        "{events:?}"
    );
    let expected_ms = pcm.len() as u64 * 1000 / u64::from(testdata::RATE);
    assert_eq!(events.last(), Some(&SttEvent::Usage { audio_ms: expected_ms, estimated: true }));
    assert_eq!(events.iter().filter(|e| matches!(e, SttEvent::Usage { .. })).count(), 1);
    assert_eq!(sim.seen_keys(), [KEY]);
    assert_eq!(sim.audio_bytes(), pcm.len() as u64 * 2);
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_key_is_refused_at_the_upgrade() {
    let sim = sim(TranscribeSimConfig::default()).await;
    for bad in
        ["AKIATESTTRANSCRIBE01:wrong-SECRET-value", "AKIAUNKNOWN:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "no-colon"]
    {
        let err = connect(&sim, bad).await.err().unwrap();
        assert_eq!(err, SttError::Unauthorized, "{bad}");
        assert!(!format!("{err:?}").contains("SECRET"));
    }
    assert_eq!(sim.connections(), 0);
    let base = sim.base_url();
    let t = Transcribe::new();
    assert_eq!(t.check_key(&base, &SecretString::from("AKIAX:nope")).await, Err(SttError::Unauthorized));
    t.check_key(&base, &SecretString::from(KEY)).await.unwrap();
}

#[tokio::test]
async fn a_refused_upgrade_carries_the_aws_error_shape() {
    let sim = sim(TranscribeSimConfig::default()).await;
    let url = format!("http://{}/stream-transcription-websocket?language-code=en-US", sim.addr());
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers()["x-amzn-ErrorType"].to_str().unwrap().starts_with("MissingAuthenticationTokenException"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
}

#[tokio::test]
async fn an_exception_mid_stream_is_an_error_then_usage() {
    let sim = sim(TranscribeSimConfig { fail_after_audio_ms: Some(400), ..Default::default() }).await;
    let mut stream = connect(&sim, KEY).await.unwrap();
    send_frames(&stream, &testdata::silence(1.0)).await;
    let events = drain(&mut stream).await;
    let n = events.len();
    assert!(n >= 2, "{events:?}");
    assert!(
        matches!(&events[n - 2], SttEvent::Error(SttError::Protocol(m)) if m.starts_with("InternalFailureException")),
        "{events:?}"
    );
    assert!(matches!(events[n - 1], SttEvent::Usage { estimated: true, audio_ms } if audio_ms >= 400));
}
