//! Adapter ↔ simulator over real loopback sockets.

use super::Cartesia;
use crate::sim::{CartesiaSim, CartesiaSimConfig};
use crate::{Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;

const KEY: &str = "sk_car_sim-good-0123456789";

async fn sim(cfg: CartesiaSimConfig) -> CartesiaSim {
    CartesiaSim::start(CartesiaSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn fast() -> CartesiaSimConfig {
    CartesiaSimConfig { pace: 20.0, first_audio_delay: Duration::from_millis(10), ..Default::default() }
}

async fn connect(sim: &CartesiaSim, key: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    Cartesia::new()
        .connect(TtsRequest {
            base_url: &base,
            key: &key,
            model: "sonic-3",
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
async fn text_becomes_audio_with_word_alignment_done_and_usage() {
    let text = "Hello there. How are you today?";
    for rate in [8000, 16000, 24000, 44100] {
        let sim = sim(fast()).await;
        let mut s = connect(&sim, KEY, rate).await.unwrap();
        s.text.send(TtsInput::Text("Hello there. ".into())).await.unwrap();
        s.text.send(TtsInput::Text("How are you today?".into())).await.unwrap();
        s.text.send(TtsInput::Flush).await.unwrap();
        s.text.send(TtsInput::Close).await.unwrap();
        let events = drain(&mut s).await;

        let mut bytes = 0usize;
        let mut chars = String::new();
        let mut starts = Vec::new();
        for ev in &events {
            if let TtsEvent::Audio { pcm, alignment } = ev {
                bytes += pcm.len();
                if let Some(a) = alignment {
                    chars.extend(&a.chars);
                    starts.extend(&a.start_ms);
                }
            }
        }
        let n = text.chars().count() as u64;
        assert_eq!(bytes as u64, n * 50 * u64::from(rate) / 1000 * 2, "rate {rate}: audio follows the text");
        assert_eq!(chars, text, "word timestamps rebuild the text");
        assert!(starts.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(starts.last().copied(), Some(30 * 50), "the last '?' is char 30");

        let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
        let usages: Vec<_> = events.iter().filter(|e| matches!(e, TtsEvent::Usage { .. })).collect();
        assert_eq!(usages.len(), 2, "one after the flush, one final: {events:?}");
        assert!(done < events.len() - 1);
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: n }));
        assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
        assert_eq!(sim.chars_received(), n);
    }
}

#[tokio::test]
async fn bad_key_is_refused_at_connect_and_by_check_key() {
    let sim = sim(fast()).await;
    let bad = "sk_car_wrong-secret-9876";
    let err = connect(&sim, bad, 16000).await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains("9876"));
    let base = sim.base_url();
    let tts = Cartesia::new();
    assert_eq!(tts.check_key(&base, &SecretString::from(bad.to_string())).await, Err(TtsError::Unauthorized));
    assert_eq!(tts.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
    assert_eq!(sim.seen_keys(), [bad, bad, KEY]);
    // Admin keys never reach the provider.
    let admin = SecretString::from("sk_car_admin_123".to_string());
    assert_eq!(tts.check_key(&base, &admin).await, Err(TtsError::Unauthorized));
    assert_eq!(sim.seen_keys().len(), 3);
    assert_eq!(sim.connections_accepted(), 0);
}

#[tokio::test]
async fn unsupported_rate_is_refused_before_connecting() {
    let sim = sim(fast()).await;
    assert_eq!(connect(&sim, KEY, 11025).await.err(), Some(TtsError::UnsupportedSampleRate(11025)));
    assert_eq!(sim.connections_accepted(), 0);
}

#[tokio::test]
async fn provider_error_mid_stream_is_reported_then_usage() {
    let sim = sim(CartesiaSimConfig { fail_after_chars: Some(10), ..fast() }).await;
    let mut s = connect(&sim, KEY, 24000).await.unwrap();
    let said = "A sentence long enough to pass the fault point. ";
    s.text.send(TtsInput::Text(said.into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let events = drain(&mut s).await;
    let err = events.iter().find_map(|e| match e {
        TtsEvent::Error(e) => Some(e.clone()),
        _ => None,
    });
    assert_eq!(err, Some(TtsError::Provider { message: "Internal Server Error: generation failed".into() }));
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
}

#[tokio::test]
async fn barge_in_cancels_the_context_and_closes_promptly() {
    let sim =
        sim(CartesiaSimConfig { pace: 1.0, first_audio_delay: Duration::from_millis(10), ..Default::default() }).await;
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

#[tokio::test]
async fn a_stream_with_no_text_is_done_at_once() {
    let sim = sim(fast()).await;
    let TtsStream { text, mut events } = connect(&sim, KEY, 16000).await.unwrap();
    drop(text);
    let mut got = Vec::new();
    while let Some(ev) = timeout(Duration::from_secs(2), events.recv()).await.unwrap() {
        got.push(ev);
    }
    assert_eq!(got, [TtsEvent::Done, TtsEvent::Usage { characters: 0 }]);
}
