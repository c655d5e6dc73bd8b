//! Multi-context path ↔ simulator over real loopback sockets: one socket across turns.

use crate::sim::{ElevenLabsSim, ElevenLabsSimConfig};
use crate::{ElevenLabs, Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;

const KEY: &str = "sk-sim-multi-0123456789";

async fn sim(cfg: ElevenLabsSimConfig) -> ElevenLabsSim {
    ElevenLabsSim::start(ElevenLabsSimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

fn fast() -> ElevenLabsSimConfig {
    ElevenLabsSimConfig { pace: 20.0, first_audio_delay: Duration::from_millis(10), ..Default::default() }
}

async fn connect(el: &ElevenLabs, sim: &ElevenLabsSim, key: &str) -> Result<TtsStream, TtsError> {
    let key = SecretString::from(key.to_string());
    el.connect(TtsRequest {
        base_url: &sim.base_url(),
        key: &key,
        model: "eleven_flash_v2_5",
        voice: "multi:voice-1",
        sample_rate: 16000,
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

fn voiced(events: &[TtsEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TtsEvent::Audio { alignment: Some(a), .. } => Some(a.chars.iter().collect::<String>()),
            _ => None,
        })
        .collect()
}

async fn turn(el: &ElevenLabs, sim: &ElevenLabsSim, said: &str) -> Vec<TtsEvent> {
    let mut s = connect(el, sim, KEY).await.unwrap();
    s.text.send(TtsInput::Text(said.into())).await.unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    s.text.send(TtsInput::Close).await.unwrap();
    drain(&mut s).await
}

#[tokio::test]
async fn turns_share_one_socket_and_each_context_ends_with_done_and_usage() {
    let sim = sim(fast()).await;
    let el = ElevenLabs::new();
    for said in ["Hello there. How are you today?", "Fine, thanks."] {
        let events = turn(&el, &sim, said).await;
        assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
        assert_eq!(voiced(&events), said);
        let bytes: usize = events.iter().map(|e| if let TtsEvent::Audio { pcm, .. } = e { pcm.len() } else { 0 }).sum();
        assert_eq!(bytes, said.chars().count() * 800 * 2, "50 ms per character at 16 kHz");
        let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
        let usages: Vec<usize> =
            events.iter().enumerate().filter(|(_, e)| matches!(e, TtsEvent::Usage { .. })).map(|(i, _)| i).collect();
        assert_eq!(usages.len(), 2, "one after the flush, one final");
        assert!(usages[0] < done);
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
    }
    assert_eq!(sim.connections_accepted(), 1, "the second turn reused the socket");
    assert_eq!(sim.contexts_closed(), 2);
    assert_eq!(sim.open_connections(), 1, "the pooled socket stays open between turns");
}

#[tokio::test]
async fn barge_in_closes_the_context_not_the_socket() {
    let sim =
        sim(ElevenLabsSimConfig { pace: 1.0, first_audio_delay: Duration::from_millis(10), ..Default::default() })
            .await;
    let el = ElevenLabs::new();
    let mut s = connect(&el, &sim, KEY).await.unwrap();
    s.text
        .send(TtsInput::Text("This is a long answer that the caller will interrupt halfway through.".into()))
        .await
        .unwrap();
    s.text.send(TtsInput::Flush).await.unwrap();
    while !matches!(timeout(Duration::from_secs(5), s.events.recv()).await.unwrap(), Some(TtsEvent::Audio { .. })) {}
    drop(s); // barge-in
    timeout(Duration::from_millis(500), async {
        while sim.contexts_closed() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("close_context reached the provider");
    assert_eq!(sim.open_connections(), 1);

    // The next turn shares the socket; audio still flowing for the old context is not its.
    let events = turn(&el, &sim, "Okay.").await;
    assert_eq!(voiced(&events), "Okay.");
    assert!(events.contains(&TtsEvent::Done), "{events:?}");
    assert_eq!(sim.connections_accepted(), 1);
}

#[tokio::test]
async fn bad_key_is_refused_at_the_handshake_and_pools_nothing() {
    let sim = sim(fast()).await;
    let el = ElevenLabs::new();
    let bad = "sk-wrong-multi-9876";
    let err = connect(&el, &sim, bad).await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!format!("{err} {err:?} {el:?}").contains("9876"));
    assert_eq!(sim.connections_accepted(), 0);
    assert_eq!(voiced(&turn(&el, &sim, "Hi.").await), "Hi.");
    assert_eq!(sim.seen_keys(), [bad, KEY]);
}

#[tokio::test]
async fn a_provider_fault_fails_the_context_and_the_next_turn_reconnects() {
    let sim = sim(ElevenLabsSimConfig { fail_after_chars: Some(10), ..fast() }).await;
    let el = ElevenLabs::new();
    let said = "A sentence long enough to pass the fault point.";
    let events = turn(&el, &sim, said).await;
    assert!(events.iter().any(|e| matches!(e, TtsEvent::Error(TtsError::Closed { code: 1011, .. }))), "{events:?}");
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
    let events = turn(&el, &sim, "Short.").await;
    assert!(events.contains(&TtsEvent::Done), "{events:?}");
    assert_eq!(sim.connections_accepted(), 2, "the dead socket left the pool");
}
