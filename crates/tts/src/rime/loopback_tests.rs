//! Adapter ↔ simulator over real loopback sockets.

use super::Rime;
use crate::sim::{RimeSim, RimeSimConfig};
use crate::{Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;

const KEY: &str = "rime-sim-good-0123456789";

async fn sim(cfg: RimeSimConfig) -> RimeSim {
    RimeSim::start(RimeSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn fast() -> RimeSimConfig {
    RimeSimConfig { pace: 20.0, first_audio_delay: Duration::from_millis(10), ..Default::default() }
}

async fn connect(sim: &RimeSim, key: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    Rime::new()
        .connect(TtsRequest {
            base_url: &base,
            key: &key,
            model: "mistv2",
            voice: super::DEFAULT_VOICE,
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

#[tokio::test]
async fn sentences_become_whole_sample_audio_with_alignment_done_and_usage() {
    let text = "Hello there. How are you today?";
    for rate in [8000, 16000, 22050, 24000, 44100] {
        let sim = sim(fast()).await;
        let mut s = connect(&sim, KEY, rate).await.unwrap();
        s.text.send(TtsInput::Text("Hello there. ".into())).await.unwrap();
        s.text.send(TtsInput::Text("How are you today?".into())).await.unwrap();
        s.text.send(TtsInput::Flush).await.unwrap();
        s.text.send(TtsInput::Close).await.unwrap();
        let events = drain(&mut s).await;

        let mut bytes = 0u64;
        let mut chars = String::new();
        let mut starts = Vec::new();
        for ev in &events {
            if let TtsEvent::Audio { pcm, alignment } = ev {
                assert_eq!(pcm.len() % 2, 0, "odd chunks are re-joined into whole samples");
                bytes += pcm.len() as u64;
                if let Some(a) = alignment {
                    chars.extend(&a.chars);
                    starts.extend(&a.start_ms);
                }
            }
        }
        // Two segments ("Hello there." and "How are you today?"); the gap is not voiced.
        assert_eq!(bytes, 30 * 50 * u64::from(rate) / 1000 * 2, "rate {rate}");
        assert_eq!(chars, text);
        assert!(starts.windows(2).all(|w| w[0] <= w[1]), "segment clocks joined: {starts:?}");
        assert_eq!(starts.last().copied(), Some(29 * 50));

        assert!(events.contains(&TtsEvent::Done));
        let n = text.chars().count() as u64;
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: n }));
        assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
        assert_eq!(sim.chars_received(), n);
    }
}

#[tokio::test]
async fn bad_key_is_refused_at_the_upgrade_and_by_check_key() {
    let sim = sim(fast()).await;
    let bad = "rime-wrong-secret-9876";
    let err = connect(&sim, bad, 16000).await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains("9876"));
    let base = sim.base_url();
    let tts = Rime::new();
    assert_eq!(tts.check_key(&base, &SecretString::from(bad.to_string())).await, Err(TtsError::Unauthorized));
    assert_eq!(tts.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
    assert_eq!(sim.seen_keys(), [bad, bad, KEY]);
    assert_eq!(connect(&sim, KEY, 11025).await.err(), Some(TtsError::UnsupportedSampleRate(11025)));
}

#[tokio::test]
async fn provider_error_mid_stream_is_reported_then_usage() {
    let sim = sim(RimeSimConfig { fail_after_chars: Some(10), ..fast() }).await;
    let mut s = connect(&sim, KEY, 24000).await.unwrap();
    let said = "A sentence long enough to pass the fault point. ";
    s.text.send(TtsInput::Text(said.into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let events = drain(&mut s).await;
    let err = events.iter().find_map(|e| if let TtsEvent::Error(e) = e { Some(e.clone()) } else { None });
    assert_eq!(err, Some(TtsError::Provider { message: "internal server error".into() }));
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
}

#[tokio::test]
async fn barge_in_clears_and_closes_promptly() {
    let sim =
        sim(RimeSimConfig { pace: 1.0, first_audio_delay: Duration::from_millis(10), ..Default::default() }).await;
    let mut s = connect(&sim, KEY, 16000).await.unwrap();
    s.text.send(TtsInput::Text("This is a long answer that the caller will interrupt. ".into())).await.unwrap();
    let first = timeout(Duration::from_secs(5), s.events.recv()).await.unwrap();
    assert!(matches!(first, Some(TtsEvent::Audio { .. })), "{first:?}");
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
