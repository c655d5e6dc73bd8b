//! Adapter ↔ simulator over real loopback sockets.

use super::DeepgramAura;
use crate::sim::{DeepgramTtsSim, DeepgramTtsSimConfig};
use crate::{Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;

const KEY: &str = "dg-sim-good-0123456789";

async fn sim(cfg: DeepgramTtsSimConfig) -> DeepgramTtsSim {
    DeepgramTtsSim::start(DeepgramTtsSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn fast() -> DeepgramTtsSimConfig {
    DeepgramTtsSimConfig { pace: 20.0, first_audio_delay: Duration::from_millis(10), ..Default::default() }
}

async fn connect(sim: &DeepgramTtsSim, key: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    DeepgramAura::new()
        .connect(TtsRequest { base_url: &base, key: &key, model: "aura-2", voice: "thalia-en", sample_rate: rate })
        .await
}

async fn drain(stream: &mut TtsStream) -> Vec<TtsEvent> {
    let mut out = Vec::new();
    while let Some(ev) = timeout(Duration::from_secs(10), stream.events.recv()).await.unwrap() {
        out.push(ev);
    }
    out
}

fn audio_bytes(events: &[TtsEvent]) -> u64 {
    events.iter().map(|e| if let TtsEvent::Audio { pcm, .. } = e { pcm.len() as u64 } else { 0 }).sum()
}

#[tokio::test]
async fn two_turn_pieces_become_audio_then_done_and_cumulative_usage() {
    for rate in [8000, 16000, 24000] {
        let sim = sim(fast()).await;
        let mut s = connect(&sim, KEY, rate).await.unwrap();
        s.text.send(TtsInput::Text("Hello there. ".into())).await.unwrap();
        s.text.send(TtsInput::Flush).await.unwrap();
        s.text.send(TtsInput::Text("How are you today?".into())).await.unwrap();
        s.text.send(TtsInput::Close).await.unwrap();
        let events = drain(&mut s).await;

        let n = 31u64;
        assert_eq!(audio_bytes(&events), n * 50 * u64::from(rate) / 1000 * 2, "rate {rate}");
        assert!(events.iter().all(|e| !matches!(e, TtsEvent::Audio { alignment: Some(_), .. })));
        let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
        let last_audio = events.iter().rposition(|e| matches!(e, TtsEvent::Audio { .. })).unwrap();
        assert!(last_audio < done, "Done waits for the second Flushed");
        assert_eq!(events.first(), Some(&TtsEvent::Usage { characters: 13 }), "usage right after the flush");
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: n }));
        assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
        assert_eq!(sim.chars_received(), n);
    }
}

#[tokio::test]
async fn bad_key_is_refused_at_connect_and_by_check_key() {
    let sim = sim(fast()).await;
    let bad = "dg-wrong-secret-9876";
    let err = connect(&sim, bad, 16000).await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains("9876"));
    let base = sim.base_url();
    let tts = DeepgramAura::new();
    assert_eq!(tts.check_key(&base, &SecretString::from(bad.to_string())).await, Err(TtsError::Unauthorized));
    assert_eq!(tts.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
    assert_eq!(sim.seen_keys(), [bad, bad, KEY]);
    assert_eq!(sim.connections_accepted(), 0);
}

#[tokio::test]
async fn rates_and_models_deepgram_lacks_are_refused() {
    let sim = sim(fast()).await;
    assert_eq!(connect(&sim, KEY, 22050).await.err(), Some(TtsError::UnsupportedSampleRate(22050)));
    let base = sim.base_url();
    let key = SecretString::from(KEY.to_string());
    let err = DeepgramAura::new()
        .connect(TtsRequest { base_url: &base, key: &key, model: "", voice: "nova-3", sample_rate: 16000 })
        .await
        .err();
    assert_eq!(err, Some(TtsError::Provider { message: "HTTP 400: No such model/version combination found.".into() }));
    assert_eq!(sim.connections_accepted(), 0);
}

#[tokio::test]
async fn provider_fault_mid_stream_is_a_closed_error_then_usage() {
    let sim = sim(DeepgramTtsSimConfig { fail_after_chars: Some(10), ..fast() }).await;
    let mut s = connect(&sim, KEY, 24000).await.unwrap();
    let said = "A sentence long enough to pass the fault point. ";
    s.text.send(TtsInput::Text(said.into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let events = drain(&mut s).await;
    let err = events.iter().find_map(|e| if let TtsEvent::Error(e) = e { Some(e.clone()) } else { None });
    assert!(matches!(err, Some(TtsError::Closed { code: 1011, .. })), "{events:?}");
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
}

#[tokio::test]
async fn barge_in_clears_and_closes_promptly() {
    let sim =
        sim(DeepgramTtsSimConfig { pace: 1.0, first_audio_delay: Duration::from_millis(10), ..Default::default() })
            .await;
    let mut s = connect(&sim, KEY, 16000).await.unwrap();
    s.text.send(TtsInput::Text("This is a long answer that the caller will interrupt. ".into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    loop {
        match timeout(Duration::from_secs(5), s.events.recv()).await.unwrap() {
            Some(TtsEvent::Audio { .. }) => break,
            Some(TtsEvent::Usage { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(sim.open_connections(), 1);
    drop(s);
    timeout(Duration::from_millis(500), async {
        while sim.open_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the simulator saw the disconnect");
}
