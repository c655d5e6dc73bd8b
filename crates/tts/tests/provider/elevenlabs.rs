//! ElevenLabs: the end of input by dropping the sender, and the multi-context socket shared
//! across turns (`multi:` voices).

use crate::util::{drain, eventually, keys, quick, send, text, voiced};
use secrecy::SecretString;
use std::time::Duration;
use tokio::time::timeout;
use tts::{ElevenLabs, Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};
use tts_sim::{ElevenLabsSim, ElevenLabsSimConfig, Voicing};

const KEY: &str = "sk-sim-multi-0123456789";

async fn sim(cfg: ElevenLabsSimConfig) -> ElevenLabsSim {
    ElevenLabsSim::start(keys(KEY), cfg.into()).await.unwrap()
}

fn fast() -> ElevenLabsSimConfig {
    ElevenLabsSimConfig { voicing: quick(Voicing::default(), 20.0, 10), ..Default::default() }
}

/// A stream on `voice` (`multi:…` for the shared socket).
async fn connect(el: &ElevenLabs, sim: &ElevenLabsSim, key: &str, voice: &str) -> Result<TtsStream, TtsError> {
    let key = SecretString::from(key.to_string());
    let base = sim.base_url();
    el.connect(TtsRequest { base_url: &base, key: &key, model: "eleven_flash_v2_5", voice, sample_rate: 16000 }).await
}

async fn turn(el: &ElevenLabs, sim: &ElevenLabsSim, said: &str) -> Vec<TtsEvent> {
    let mut s = connect(el, sim, KEY, "multi:voice-1").await.unwrap();
    send(&s, [text(said), TtsInput::Flush, TtsInput::Close]).await;
    drain(&mut s).await
}

#[tokio::test]
async fn dropping_only_the_text_sender_finishes_and_still_reports_usage() {
    let sim = sim(ElevenLabsSimConfig { voicing: quick(Voicing::default(), 4.0, 20), ..Default::default() }).await;
    let TtsStream { text: input, mut events } = connect(&ElevenLabs::new(), &sim, KEY, "voice-1").await.unwrap();
    let said = "Sure, one moment while I check that for you. ";
    input.send(text(said)).await.unwrap();
    let first = timeout(Duration::from_secs(5), events.recv()).await.unwrap();
    assert!(matches!(first, Some(TtsEvent::Audio { .. })), "{first:?}");
    drop(input); // mid-generation: acts as EOS
    let mut rest = vec![first.unwrap()];
    while let Some(ev) = timeout(Duration::from_secs(10), events.recv()).await.unwrap() {
        rest.push(ev);
    }
    assert!(rest.contains(&TtsEvent::Done));
    assert_eq!(rest.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
    assert_eq!(voiced(&rest), said.trim_end());
    eventually("the simulator saw the disconnect", || sim.open_connections() == 0).await;
}

#[tokio::test]
async fn turns_share_one_socket_and_each_context_ends_with_done_and_usage() {
    let sim = sim(fast()).await;
    let el = ElevenLabs::new();
    for said in ["Hello there. How are you today?", "Fine, thanks."] {
        let events = turn(&el, &sim, said).await;
        assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
        assert_eq!(voiced(&events), said);
        assert_eq!(crate::util::audio_bytes(&events), said.chars().count() * 800 * 2, "50 ms per character at 16 kHz");
        let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
        let usages: Vec<usize> =
            events.iter().enumerate().filter(|(_, e)| matches!(e, TtsEvent::Usage { .. })).map(|(i, _)| i).collect();
        assert_eq!(usages.len(), 2, "one after the flush, one final");
        assert!(usages[0] < done);
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
    }
    assert_eq!(sim.connections(), 1, "the second turn reused the socket");
    assert_eq!(sim.service().contexts_closed(), 2);
    assert_eq!(sim.open_connections(), 1, "the pooled socket stays open between turns");
}

#[tokio::test]
async fn barge_in_closes_the_context_not_the_socket() {
    let sim = sim(ElevenLabsSimConfig { voicing: quick(Voicing::default(), 1.0, 10), ..Default::default() }).await;
    let el = ElevenLabs::new();
    let mut s = connect(&el, &sim, KEY, "multi:voice-1").await.unwrap();
    let long = "This is a long answer that the caller will interrupt halfway through.";
    send(&s, [text(long), TtsInput::Flush]).await;
    while !matches!(timeout(Duration::from_secs(5), s.events.recv()).await.unwrap(), Some(TtsEvent::Audio { .. })) {}
    drop(s); // barge-in
    eventually("close_context reached the provider", || sim.service().contexts_closed() > 0).await;
    assert_eq!(sim.open_connections(), 1);

    // The next turn shares the socket; audio still flowing for the old context is not its.
    let events = turn(&el, &sim, "Okay.").await;
    assert_eq!(voiced(&events), "Okay.");
    assert!(events.contains(&TtsEvent::Done), "{events:?}");
    assert_eq!(sim.connections(), 1);
}

#[tokio::test]
async fn bad_key_is_refused_at_the_handshake_and_pools_nothing() {
    let sim = sim(fast()).await;
    let el = ElevenLabs::new();
    let bad = "sk-wrong-multi-9876";
    let err = connect(&el, &sim, bad, "multi:voice-1").await.err().unwrap();
    assert_eq!(err, TtsError::Unauthorized);
    assert!(!format!("{err} {err:?} {el:?}").contains("9876"));
    assert_eq!(sim.connections(), 0);
    assert_eq!(voiced(&turn(&el, &sim, "Hi.").await), "Hi.");
    assert_eq!(sim.seen_keys(), [bad, KEY]);
}

#[tokio::test]
async fn a_provider_fault_fails_the_context_and_the_next_turn_reconnects() {
    let mut cfg = fast();
    cfg.voicing.fail_after_chars = Some(10);
    let sim = sim(cfg).await;
    let el = ElevenLabs::new();
    let said = "A sentence long enough to pass the fault point.";
    let events = turn(&el, &sim, said).await;
    assert!(events.iter().any(|e| matches!(e, TtsEvent::Error(TtsError::Closed { code: 1011, .. }))), "{events:?}");
    assert!(!events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
    let events = turn(&el, &sim, "Short.").await;
    assert!(events.contains(&TtsEvent::Done), "{events:?}");
    assert_eq!(sim.connections(), 2, "the dead socket left the pool");
}

#[tokio::test]
async fn live_streams_on_one_socket_each_hear_only_their_own_audio() {
    let sim = sim(fast()).await;
    let el = ElevenLabs::new();
    let mut a = connect(&el, &sim, KEY, "multi:voice-1").await.unwrap();
    let mut b = connect(&el, &sim, KEY, "multi:voice-1").await.unwrap();
    let (said_a, said_b) = ("The first caller hears this sentence.", "And the second caller hears that one.");
    send(&a, [text(said_a), TtsInput::Flush]).await;
    send(&b, [text(said_b), TtsInput::Flush]).await;
    send(&a, [TtsInput::Close]).await;
    send(&b, [TtsInput::Close]).await;
    let (a, b) = tokio::join!(drain(&mut a), drain(&mut b));
    for (events, said) in [(a, said_a), (b, said_b)] {
        assert!(events.contains(&TtsEvent::Done), "{events:?}");
        assert_eq!(voiced(&events), said, "each context gets only its own audio");
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
    }
    assert_eq!(sim.connections(), 1);
    assert_eq!(sim.service().contexts_closed(), 2);
}

#[tokio::test]
async fn a_provider_fault_fails_every_context_on_the_socket() {
    let mut cfg = fast();
    cfg.voicing.fail_after_chars = Some(20);
    let sim = sim(cfg).await;
    let el = ElevenLabs::new();
    let mut a = connect(&el, &sim, KEY, "multi:voice-1").await.unwrap();
    let mut b = connect(&el, &sim, KEY, "multi:voice-1").await.unwrap();
    let said = "Long enough that the fault comes halfway through it.";
    send(&a, [text(said), TtsInput::Flush]).await;
    send(&b, [text(said), TtsInput::Flush]).await;
    let (a, b) = tokio::join!(drain(&mut a), drain(&mut b));
    for events in [a, b] {
        let failed = |e: &TtsEvent| matches!(e, TtsEvent::Error(TtsError::Closed { code: 1011, .. }));
        assert!(events.iter().any(failed), "{events:?}");
        assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: said.chars().count() as u64 }));
    }
}

#[tokio::test]
async fn an_unused_socket_says_close_socket_and_the_next_turn_opens_another() {
    let sim = sim(fast()).await;
    let idle = Duration::from_millis(500);
    let el = ElevenLabs::new().with_socket_idle(idle);
    assert_eq!(voiced(&turn(&el, &sim, "Hi.").await), "Hi.");
    assert_eq!(sim.open_connections(), 1, "open until idle");
    tokio::time::sleep(idle).await;
    eventually("the idle socket closed", || sim.open_connections() == 0).await;
    assert_eq!(sim.service().sockets_closed(), 1, "closed with close_socket");
    assert_eq!(voiced(&turn(&el, &sim, "Again.").await), "Again.");
    assert_eq!(sim.connections(), 2);
}

#[tokio::test]
async fn a_quiet_stream_is_kept_alive_past_the_provider_inactivity_limit() {
    let cfg = ElevenLabsSimConfig { inactivity_timeout: Duration::from_millis(400), ..fast() };
    let sim = sim(cfg).await;
    let el = ElevenLabs::new().with_keep_alive(Duration::from_millis(50));
    let mut s = connect(&el, &sim, KEY, "multi:voice-1").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await; // a long LLM pause
    send(&s, [text("Still here."), TtsInput::Flush, TtsInput::Close]).await;
    let events = drain(&mut s).await;
    assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
    assert_eq!(voiced(&events), "Still here.");
    assert_eq!(sim.connections(), 1);
}
