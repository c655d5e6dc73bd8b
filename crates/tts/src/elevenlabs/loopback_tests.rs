//! Adapter ↔ simulator over real loopback sockets.

use crate::sim::{ElevenLabsSim, ElevenLabsSimConfig};
use crate::{Alignment, ElevenLabs, Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;

const KEY: &str = "sk-sim-good-0123456789";

async fn sim(cfg: ElevenLabsSimConfig) -> ElevenLabsSim {
    ElevenLabsSim::start(ElevenLabsSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

async fn connect(sim: &ElevenLabsSim, key: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    ElevenLabs::new()
        .connect(TtsRequest {
            base_url: &base,
            key: &key,
            model: "eleven_flash_v2_5",
            voice: "voice-1",
            sample_rate: rate,
        })
        .await
}

/// Every event until the adapter closes the channel.
async fn drain(stream: &mut TtsStream) -> Vec<TtsEvent> {
    let mut out = Vec::new();
    while let Some(ev) = timeout(Duration::from_secs(10), stream.events.recv()).await.unwrap() {
        out.push(ev);
    }
    out
}

#[tokio::test]
async fn bad_key_is_unauthorized_and_never_echoed() {
    let sim = sim(ElevenLabsSimConfig::default()).await;
    let bad = "sk-wrong-key-secret-9876";
    let err = connect(&sim, bad, 16000).await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!err.to_string().contains(bad) && !format!("{err:?}").contains(bad));
    assert!(!err.to_string().contains("9876"));
    assert_eq!(sim.seen_keys(), [bad]);

    // A key added while running is accepted from then on.
    sim.keys().add(bad);
    assert!(connect(&sim, bad, 16000).await.is_ok());
}

#[tokio::test]
async fn unsupported_rate_is_refused_before_connecting() {
    let sim = sim(ElevenLabsSimConfig::default()).await;
    assert_eq!(connect(&sim, KEY, 11025).await.err(), Some(TtsError::UnsupportedSampleRate(11025)));
    assert_eq!(sim.connections_accepted(), 0);
}

#[tokio::test]
async fn text_becomes_audio_with_alignment_done_and_usage_at_every_rate() {
    let text = "Hello there. How are you today?";
    for rate in [16000, 8000, 22050, 24000, 44100] {
        // Fast pace keeps the five runs short; duration maths does not depend on it.
        let sim =
            sim(ElevenLabsSimConfig { pace: 20.0, first_audio_delay: Duration::from_millis(20), ..Default::default() })
                .await;
        let mut s = connect(&sim, KEY, rate).await.unwrap();
        s.text.send(TtsInput::Text("Hello there. ".into())).await.unwrap();
        s.text.send(TtsInput::Text("How are you today?".into())).await.unwrap();
        s.text.send(TtsInput::Flush).await.unwrap();
        s.text.send(TtsInput::Close).await.unwrap();
        let events = drain(&mut s).await;

        let mut bytes = 0usize;
        let mut aligned = Alignment::default();
        for ev in &events {
            if let TtsEvent::Audio { pcm, alignment } = ev {
                bytes += pcm.len();
                let al = alignment.as_ref().expect("the simulator always aligns");
                aligned.chars.extend(&al.chars);
                aligned.start_ms.extend(&al.start_ms);
                aligned.duration_ms.extend(&al.duration_ms);
            }
        }
        let chars = text.chars().count() as u64;
        let expected = chars * 50 * u64::from(rate) / 1000;
        let frame = u64::from(rate) / 50;
        assert_eq!(bytes % 2, 0);
        let samples = bytes as u64 / 2;
        assert!(samples.abs_diff(expected) <= frame, "rate {rate}: {samples} samples, want {expected}");
        assert_eq!(aligned.chars.iter().collect::<String>(), text, "rate {rate}");
        assert!(aligned.start_ms.windows(2).all(|w| w[0] < w[1]), "stream-relative, increasing");
        assert_eq!(aligned.start_ms.last().copied(), Some((chars as u32 - 1) * 50));

        let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
        let usages: Vec<usize> =
            events.iter().enumerate().filter(|(_, e)| matches!(e, TtsEvent::Usage { .. })).map(|(i, _)| i).collect();
        assert_eq!(usages.len(), 2, "one after the flush, one final");
        assert!(usages[0] < done);
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: chars }));
        assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
        assert_eq!(sim.chars_received(), chars + 1, "the adapter appended one separator space");
    }
}

#[tokio::test]
async fn dropping_the_stream_mid_generation_closes_the_socket_promptly() {
    let sim = sim(ElevenLabsSimConfig { pace: 1.0, ..Default::default() }).await;
    let mut s = connect(&sim, KEY, 16000).await.unwrap();
    s.text
        .send(TtsInput::Text("This is a long answer that the caller will interrupt halfway through. ".into()))
        .await
        .unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    loop {
        match timeout(Duration::from_secs(5), s.events.recv()).await.unwrap() {
            Some(TtsEvent::Audio { .. }) => break,
            Some(TtsEvent::Usage { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(sim.open_connections(), 1);
    drop(s); // barge-in
    wait_closed(&sim, Duration::from_millis(500)).await;
    assert!(sim.chars_received() > 0);
}

async fn wait_closed(sim: &ElevenLabsSim, within: Duration) {
    timeout(within, async {
        while sim.open_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the simulator saw the disconnect");
}

#[tokio::test]
async fn dropping_only_the_text_sender_finishes_and_still_reports_usage() {
    let sim =
        sim(ElevenLabsSimConfig { pace: 4.0, first_audio_delay: Duration::from_millis(20), ..Default::default() })
            .await;
    let TtsStream { text, mut events } = connect(&sim, KEY, 16000).await.unwrap();
    let said = "Sure, one moment while I check that for you. ";
    text.send(TtsInput::Text(said.into())).await.unwrap();
    let first = timeout(Duration::from_secs(5), events.recv()).await.unwrap();
    assert!(matches!(first, Some(TtsEvent::Audio { .. })), "{first:?}");
    drop(text); // mid-generation: acts as EOS
    let mut rest = vec![first.unwrap()];
    while let Some(ev) = timeout(Duration::from_secs(10), events.recv()).await.unwrap() {
        rest.push(ev);
    }
    assert!(rest.contains(&TtsEvent::Done));
    assert_eq!(rest.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
    let voiced: String = rest
        .iter()
        .filter_map(|e| match e {
            TtsEvent::Audio { alignment: Some(a), .. } => Some(a.chars.iter().collect::<String>()),
            _ => None,
        })
        .collect();
    assert_eq!(voiced, said.trim_end());
    wait_closed(&sim, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn provider_fault_is_a_closed_error_followed_by_usage() {
    let sim = sim(ElevenLabsSimConfig {
        fail_after_chars: Some(10),
        pace: 10.0,
        first_audio_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let mut s = connect(&sim, KEY, 24000).await.unwrap();
    let said = "A sentence long enough to pass the fault point. ";
    s.text.send(TtsInput::Text(said.into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let events = drain(&mut s).await;
    let err = events.iter().find_map(|e| match e {
        TtsEvent::Error(e) => Some(e.clone()),
        _ => None,
    });
    assert!(matches!(err, Some(TtsError::Closed { code: 1011, .. })), "{events:?}");
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
}
