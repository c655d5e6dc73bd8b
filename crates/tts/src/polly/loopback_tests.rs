//! Adapter ↔ simulator over real loopback sockets.

use super::{Polly, DEFAULT_VOICE};
use crate::sim::{PollySim, PollySimConfig};
use crate::{Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::time::Duration;

const KEY: &str = "AKIATESTPOLLY0001:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

async fn sim() -> PollySim {
    PollySim::start(PollySimConfig {
        keys: vec![KEY.to_string()].into(),
        first_audio_delay: Duration::from_millis(10),
        pace: 50.0,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn connect(sim: &PollySim, key: &str, model: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    Polly::new()
        .connect(TtsRequest { base_url: &base, key: &key, model, voice: DEFAULT_VOICE, sample_rate: rate })
        .await
}

async fn drain(stream: &mut TtsStream) -> Vec<TtsEvent> {
    let mut events = Vec::new();
    let collect = async {
        while let Some(ev) = stream.events.recv().await {
            events.push(ev);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect).await.expect("stream did not end");
    events
}

fn audio_bytes(events: &[TtsEvent]) -> usize {
    events.iter().map(|e| if let TtsEvent::Audio { pcm, .. } = e { pcm.len() } else { 0 }).sum()
}

#[tokio::test]
async fn sentences_become_audio_whose_length_follows_the_text() {
    let sim = sim().await;
    let mut stream = connect(&sim, KEY, "neural", 16000).await.unwrap();
    for piece in ["Hello there. ", "How can I ", "help you today?"] {
        stream.text.send(TtsInput::Text(piece.into())).await.unwrap();
    }
    stream.text.send(TtsInput::Flush).await.unwrap();
    stream.text.send(TtsInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    // "Hello there." + "How can I help you today?" = 12 + 25 characters, 50 ms each at 16 kHz.
    assert_eq!(audio_bytes(&events), 37 * 800 * 2);
    assert!(events.iter().all(|e| !matches!(e, TtsEvent::Audio { pcm, .. } if pcm.len() % 2 == 1)));
    let tail: Vec<_> = events.iter().filter(|e| !matches!(e, TtsEvent::Audio { .. })).collect();
    assert_eq!(
        tail,
        [&TtsEvent::Usage { characters: 37 }, &TtsEvent::Done, &TtsEvent::Usage { characters: 37 }],
        "{tail:?}"
    );
    assert_eq!((sim.requests(), sim.chars_billed()), (2, 37));
    assert_eq!(sim.seen_keys(), [KEY, KEY]);
}

#[tokio::test]
async fn other_rates_are_resampled_and_odd_ones_refused() {
    let sim = sim().await;
    let mut stream = connect(&sim, KEY, "standard", 24000).await.unwrap();
    stream.text.send(TtsInput::Text("One two three four five six.".into())).await.unwrap();
    stream.text.send(TtsInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    let expected = 28 * 50 * 24 * 2; // 28 characters × 50 ms at 24 kHz
    let got = audio_bytes(&events);
    assert!(got.abs_diff(expected) <= 24 * 2 * 12, "{got} vs {expected}");
    assert_eq!(connect(&sim, KEY, "neural", 11025).await.err(), Some(TtsError::UnsupportedSampleRate(11025)));
}

#[tokio::test]
async fn a_bad_key_is_refused_like_aws_and_check_key_uses_describe_voices() {
    let sim = sim().await;
    let base = sim.base_url();
    let polly = Polly::new();
    polly.check_key(&base, &SecretString::from(KEY)).await.unwrap();
    for bad in ["AKIATESTPOLLY0001:wrong-SECRET", "AKIAUNKNOWN:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "garbage"] {
        let err = polly.check_key(&base, &SecretString::from(bad)).await.unwrap_err();
        assert_eq!(err, TtsError::Unauthorized, "{bad}");
    }
    let mut stream = connect(&sim, "AKIATESTPOLLY0001:wrong-SECRET", "neural", 16000).await.unwrap();
    stream.text.send(TtsInput::Text("Hello.".into())).await.unwrap();
    stream.text.send(TtsInput::Close).await.unwrap();
    let events = drain(&mut stream).await;
    assert_eq!(events, [TtsEvent::Error(TtsError::Unauthorized), TtsEvent::Usage { characters: 0 }]);
    assert!(!format!("{events:?}").contains("SECRET"));
    assert_eq!(sim.requests(), 0);

    let resp = reqwest::Client::new().get(format!("{base}v1/voices")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers()["x-amzn-ErrorType"].to_str().unwrap().starts_with("MissingAuthenticationTokenException"));
}

#[tokio::test]
async fn a_provider_error_mid_stream_ends_it_with_error_then_usage() {
    let sim = sim().await;
    let mut stream = connect(&sim, KEY, "turbo", 8000).await.unwrap();
    stream.text.send(TtsInput::Text("Hello there.".into())).await.unwrap();
    stream.text.send(TtsInput::Flush).await.unwrap();
    let events = drain(&mut stream).await;
    match events.as_slice() {
        [TtsEvent::Error(TtsError::Provider { message }), TtsEvent::Usage { characters: 0 }] => {
            assert!(message.starts_with("ValidationException: 1 validation error"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}
