//! Adapter ↔ simulator over real loopback sockets.

use super::{Azure, DEFAULT_VOICE};
use crate::sim::{AzureTtsSim, AzureTtsSimConfig};
use crate::{Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;

const KEY: &str = "azure-tts-key-0123456789abcdef";

async fn sim(cfg: AzureTtsSimConfig) -> AzureTtsSim {
    AzureTtsSim::start(AzureTtsSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn fast() -> AzureTtsSimConfig {
    AzureTtsSimConfig { pace: 20.0, first_audio_delay: Duration::from_millis(10), ..Default::default() }
}

async fn connect(sim: &AzureTtsSim, key: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    Azure::new()
        .connect(TtsRequest { base_url: &base, key: &key, model: "neural", voice: DEFAULT_VOICE, sample_rate: rate })
        .await
}

async fn drain(stream: &mut TtsStream) -> Vec<TtsEvent> {
    let mut out = Vec::new();
    while let Some(ev) = timeout(Duration::from_secs(10), stream.events.recv()).await.unwrap() {
        out.push(ev);
    }
    out
}

fn audio_bytes(events: &[TtsEvent]) -> usize {
    events.iter().map(|e| if let TtsEvent::Audio { pcm, .. } = e { pcm.len() } else { 0 }).sum()
}

#[tokio::test]
async fn a_bad_key_is_refused_at_upgrade_and_by_check_key() {
    let sim = sim(fast()).await;
    let bad = "azure-wrong-key-SECRET-9876";
    let err = connect(&sim, bad, 16000).await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!err.to_string().contains(bad) && !format!("{err:?}").contains(bad));
    assert_eq!(sim.connections_accepted(), 0);

    let base = sim.base_url();
    let azure = Azure::new();
    assert_eq!(azure.check_key(&base, &SecretString::from(bad.to_string())).await, Err(TtsError::Unauthorized));
    assert_eq!(azure.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
    assert_eq!(sim.seen_keys(), [bad, bad, KEY]);
    assert_eq!(connect(&sim, KEY, 11025).await.err(), Some(TtsError::UnsupportedSampleRate(11025)));
}

#[tokio::test]
async fn sentences_become_requests_and_audio_follows_the_text_at_every_rate() {
    let text = "Hello there, thanks for calling. How can I help you today?";
    for rate in [8000, 16000, 24000, 48000] {
        let sim = sim(fast()).await;
        let mut s = connect(&sim, KEY, rate).await.unwrap();
        s.text.send(TtsInput::Text("Hello there, thanks for calling. How can".into())).await.unwrap();
        s.text.send(TtsInput::Text(" I help you today?".into())).await.unwrap();
        s.text.send(TtsInput::Flush).await.unwrap();
        s.text.send(TtsInput::Close).await.unwrap();
        let events = drain(&mut s).await;
        assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");

        // Two sentences, two SSML requests, one connection; every text character is voiced.
        assert_eq!(sim.requests(), 2);
        assert_eq!(sim.connections_accepted(), 1);
        assert_eq!(sim.voices_requested(), [DEFAULT_VOICE, DEFAULT_VOICE]);
        let chars = text.chars().count() as u64;
        assert_eq!(sim.chars_received(), chars);
        let samples = audio_bytes(&events) as u64 / 2;
        let expected = chars * 50 * u64::from(rate) / 1000;
        assert!(samples.abs_diff(expected) <= 2, "rate {rate}: {samples} samples, want {expected}");

        let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
        assert!(events[..done].iter().all(|e| !matches!(e, TtsEvent::Usage { .. })));
        assert_eq!(events.get(done + 1), Some(&TtsEvent::Usage { characters: chars }));
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: chars }));
    }
}

#[tokio::test]
async fn dropping_the_stream_mid_sentence_closes_the_socket() {
    let sim = sim(AzureTtsSimConfig { pace: 1.0, ..Default::default() }).await;
    let mut s = connect(&sim, KEY, 16000).await.unwrap();
    s.text.send(TtsInput::Text("This is a long answer that the caller will interrupt halfway.".into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let first = timeout(Duration::from_secs(5), s.events.recv()).await.unwrap();
    assert!(matches!(first, Some(TtsEvent::Audio { .. })), "{first:?}");
    assert_eq!(sim.open_connections(), 1);
    drop(s); // barge-in
    timeout(Duration::from_millis(500), async {
        while sim.open_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the simulator saw the disconnect");
}

#[tokio::test]
async fn a_service_fault_is_a_closed_error_followed_by_usage() {
    let sim = sim(AzureTtsSimConfig { fail_after_chars: Some(10), ..fast() }).await;
    let mut s = connect(&sim, KEY, 24000).await.unwrap();
    let said = "A sentence long enough to pass the fault point";
    s.text.send(TtsInput::Text(said.into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let events = drain(&mut s).await;
    assert!(
        events.contains(&TtsEvent::Error(TtsError::Closed { code: 1011, reason: "Internal service error.".into() })),
        "{events:?}"
    );
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
}

#[tokio::test]
async fn a_flush_with_nothing_buffered_is_done_at_once() {
    let sim = sim(fast()).await;
    let mut s = connect(&sim, KEY, 16000).await.unwrap();
    s.text.send(TtsInput::Text("   ".into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let first = timeout(Duration::from_secs(2), s.events.recv()).await.unwrap();
    assert_eq!(first, Some(TtsEvent::Done));
    s.text = tokio::sync::mpsc::channel(1).0; // drops the real sender
    assert_eq!(drain(&mut s).await, [TtsEvent::Usage { characters: 0 }, TtsEvent::Usage { characters: 0 }]);
    assert_eq!(sim.requests(), 0);
}
