//! Adapter ↔ simulator over real loopback sockets.

use crate::sim::{XaiSim, XaiSimConfig};
use crate::{Alignment, Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream, Xai};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;

const KEY: &str = "xai-sim-good-0123456789";

async fn sim(cfg: XaiSimConfig) -> XaiSim {
    XaiSim::start(XaiSimConfig {
        keys: vec![KEY.to_string()].into(),
        pace: 20.0,
        first_audio_delay: Duration::from_millis(10),
        ..cfg
    })
    .await
    .unwrap()
}

async fn connect(sim: &XaiSim, key: &str, rate: u32) -> Result<TtsStream, TtsError> {
    let key = SecretString::from(key.to_string());
    Xai::new()
        .connect(TtsRequest {
            base_url: &sim.base_url(),
            key: &key,
            model: "grok-voice",
            voice: "eve",
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
    for rate in [16000, 24000] {
        let sim = sim(XaiSimConfig::default()).await;
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
        assert_eq!(al.start_ms.last().copied(), Some((chars as u32 - 1) * 50));

        let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
        let usages: Vec<usize> =
            events.iter().enumerate().filter(|(_, e)| matches!(e, TtsEvent::Usage { .. })).map(|(i, _)| i).collect();
        assert_eq!(usages.len(), 2, "one after the flush, one final");
        assert!(usages[0] < done);
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: chars }));
        assert_eq!(sim.chars_received(), chars);
    }
}

#[tokio::test]
async fn two_utterances_keep_stream_relative_timings() {
    let sim = sim(XaiSimConfig::default()).await;
    let mut s = connect(&sim, KEY, 16000).await.unwrap();
    s.text.send(TtsInput::Text("One two. ".into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let mut first = Vec::new();
    loop {
        let ev = timeout(Duration::from_secs(5), s.events.recv()).await.unwrap().unwrap();
        let done = ev == TtsEvent::Done;
        first.push(ev);
        if done {
            break;
        }
    }
    s.text.send(TtsInput::Text("Three.".into())).await.unwrap();
    s.text.send(TtsInput::Close).await.unwrap();
    let mut events = first;
    events.extend(drain(&mut s).await);
    let (_, al) = aligned(&events);
    assert_eq!(al.chars.iter().collect::<String>(), "One two.Three.");
    assert!(al.start_ms.windows(2).all(|w| w[0] < w[1]), "{:?}", al.start_ms);
    assert_eq!(al.start_ms.get(8), Some(&400), "the second utterance starts after the first's 8 × 50 ms");
    assert_eq!(events.iter().filter(|e| **e == TtsEvent::Done).count(), 2);
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: 15 }));
}

#[tokio::test]
async fn bad_key_is_refused_on_connect_and_by_check_key() {
    let sim = sim(XaiSimConfig::default()).await;
    let bad = "xai-wrong-secret-9876";
    let err = connect(&sim, bad, 16000).await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains("9876"));
    assert_eq!(sim.connections_accepted(), 0);

    let xai = Xai::new();
    let base = sim.base_url();
    assert_eq!(xai.check_key(&base, &SecretString::from(bad.to_string())).await, Err(TtsError::Unauthorized));
    assert_eq!(xai.check_key(&base, &SecretString::from(KEY.to_string())).await, Ok(()));
    assert_eq!(sim.seen_keys(), [bad, bad, KEY]);
    assert_eq!(connect(&sim, KEY, 11025).await.err(), Some(TtsError::UnsupportedSampleRate(11025)));
}

#[tokio::test]
async fn provider_error_mid_stream_ends_with_usage_and_no_done() {
    let sim = sim(XaiSimConfig { fail_after_chars: Some(10), ..Default::default() }).await;
    let mut s = connect(&sim, KEY, 24000).await.unwrap();
    let said = "A sentence long enough to pass the fault point.";
    s.text.send(TtsInput::Text(said.into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    let events = drain(&mut s).await;
    let errors: Vec<_> = events.iter().filter(|e| matches!(e, TtsEvent::Error(_))).collect();
    assert!(
        matches!(errors.as_slice(), [TtsEvent::Error(TtsError::Provider { message })] if message.contains("synthesis failed")),
        "{events:?}"
    );
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
}

#[tokio::test]
async fn dropping_the_stream_closes_the_socket() {
    let sim = sim(XaiSimConfig { pace: 1.0, ..Default::default() }).await;
    let mut s = connect(&sim, KEY, 16000).await.unwrap();
    s.text.send(TtsInput::Text("This answer will be interrupted by the caller. ".into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    while !matches!(timeout(Duration::from_secs(5), s.events.recv()).await.unwrap(), Some(TtsEvent::Audio { .. })) {}
    drop(s);
    timeout(Duration::from_millis(500), async {
        while sim.open_connections() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the simulator saw the disconnect");
}
