//! Adapter ↔ simulator over real loopback sockets.

use crate::sim::{SonioxSim, SonioxSimConfig};
use crate::{Alignment, Soniox, Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;

const KEY: &str = "soniox-sim-good-0123456789";

async fn sim(cfg: SonioxSimConfig) -> SonioxSim {
    SonioxSim::start(SonioxSimConfig {
        keys: vec![KEY.to_string()].into(),
        pace: 20.0,
        first_audio_delay: Duration::from_millis(10),
        ..cfg
    })
    .await
    .unwrap()
}

async fn connect(sim: &SonioxSim, key: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let key = SecretString::from(key.to_string());
    Soniox::new()
        .connect(TtsRequest {
            base_url: &sim.base_url(),
            key: &key,
            model: "tts-rt-v2",
            voice: "Adrian",
            sample_rate: rate,
        })
        .await
}

async fn drain(stream: &mut TtsStream) -> Vec<TtsEvent> {
    let mut out = Vec::new();
    while let Some(ev) = timeout(Duration::from_secs(10), stream.events.recv()).await.unwrap() {
        out.push(ev);
    }
    out
}

fn aligned(events: &[TtsEvent]) -> (usize, Alignment) {
    let mut bytes = 0;
    let mut al = Alignment::default();
    for ev in events {
        if let TtsEvent::Audio { pcm, alignment } = ev {
            bytes += pcm.len();
            if let Some(a) = alignment {
                al.chars.extend(&a.chars);
                al.start_ms.extend(&a.start_ms);
                al.duration_ms.extend(&a.duration_ms);
            }
        }
    }
    (bytes, al)
}

#[tokio::test]
async fn text_becomes_audio_with_alignment_done_and_usage() {
    let text = "Hello there. How are you today?";
    for rate in [8000, 24000] {
        let sim = sim(SonioxSimConfig::default()).await;
        let mut s = connect(&sim, KEY, rate).await.unwrap();
        s.text.send(TtsInput::Text("Hello there. ".into())).await.unwrap();
        s.text.send(TtsInput::Text("How are you today?".into())).await.unwrap();
        s.text.send(TtsInput::Flush).await.unwrap();
        s.text.send(TtsInput::Close).await.unwrap();
        let events = drain(&mut s).await;
        assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
        let (bytes, al) = aligned(&events);
        let chars = text.chars().count() as u64;
        let expected = chars * 50 * u64::from(rate) / 1000;
        assert!((bytes as u64 / 2).abs_diff(expected) <= u64::from(rate) / 50, "rate {rate}: {bytes} bytes");
        assert_eq!(al.chars.iter().collect::<String>(), text);
        assert_eq!(al.duration_ms.iter().copied().max(), Some(50));

        let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
        let usages: Vec<usize> =
            events.iter().enumerate().filter(|(_, e)| matches!(e, TtsEvent::Usage { .. })).map(|(i, _)| i).collect();
        assert_eq!(usages.len(), 2, "one after the flush, one final");
        assert!(usages[0] < done);
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: chars }));
        assert_eq!(sim.chars_received(), chars);
        assert_eq!(sim.seen_keys(), [KEY]);
    }
}

#[tokio::test]
async fn text_after_a_flush_opens_a_second_stream_on_the_same_socket() {
    let sim = sim(SonioxSimConfig::default()).await;
    let mut s = connect(&sim, KEY, 16000).await.unwrap();
    s.text.send(TtsInput::Text("One two.".into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let mut events = Vec::new();
    while events.last() != Some(&TtsEvent::Done) {
        events.push(timeout(Duration::from_secs(5), s.events.recv()).await.unwrap().unwrap());
    }
    s.text.send(TtsInput::Text("Three.".into())).await.unwrap();
    s.text.send(TtsInput::Close).await.unwrap();
    events.extend(drain(&mut s).await);
    let (_, al) = aligned(&events);
    assert_eq!(al.chars.iter().collect::<String>(), "One two.Three.");
    assert!(al.start_ms.windows(2).all(|w| w[0] < w[1]), "stream-relative across Soniox streams: {:?}", al.start_ms);
    assert_eq!(events.iter().filter(|e| **e == TtsEvent::Done).count(), 2);
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: 14 }));
    assert_eq!(sim.streams_opened(), 2);
    assert_eq!(sim.seen_keys().len(), 2, "each stream's config carries the key");
}

#[tokio::test]
async fn bad_key_is_refused_in_the_stream_and_by_check_key() {
    let sim = sim(SonioxSimConfig::default()).await;
    let bad = "soniox-wrong-secret-9876";
    let mut s = connect(&sim, bad, 16000).await.unwrap();
    let events = drain(&mut s).await;
    assert_eq!(events.first(), Some(&TtsEvent::Error(TtsError::Unauthorized)), "{events:?}");
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: 0 }));

    let soniox = Soniox::new();
    let base = sim.base_url();
    let err = soniox.check_key(&base, &SecretString::from(bad.to_string())).await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains("9876"));
    assert_eq!(soniox.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
    assert_eq!(sim.chars_received(), 0, "a key check voices nothing");
    assert_eq!(connect(&sim, KEY, 22050).await.err(), Some(TtsError::UnsupportedSampleRate(22050)));
}

#[tokio::test]
async fn provider_error_mid_stream_ends_with_usage_and_no_done() {
    let sim = sim(SonioxSimConfig { fail_after_chars: Some(10), ..Default::default() }).await;
    let mut s = connect(&sim, KEY, 24000).await.unwrap();
    let said = "A sentence long enough to pass the fault point.";
    s.text.send(TtsInput::Text(said.into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let events = drain(&mut s).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TtsEvent::Error(TtsError::Provider { message }) if message.starts_with("500"))),
        "{events:?}"
    );
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
}
