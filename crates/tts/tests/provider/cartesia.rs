//! Cartesia: admin keys never leave the process; a stream without text; the first phrase voiced at once.

use crate::util::{check, connect, first_phrase_is_voiced, keys, quick};
use std::time::Duration;
use tokio::time::timeout;
use tts::{Cartesia, TtsError, TtsEvent, TtsStream};
use tts_sim::{CartesiaSim, CartesiaSimConfig};

const KEY: &str = "sk_car_sim-good-0123456789";

async fn sim() -> CartesiaSim {
    let cfg =
        CartesiaSimConfig { voicing: quick(CartesiaSimConfig::default().voicing, 20.0, 10), ..Default::default() };
    CartesiaSim::start(keys(KEY), cfg).await.unwrap()
}

#[tokio::test]
async fn admin_keys_are_refused_and_never_reach_the_provider() {
    let sim = sim().await;
    let base = sim.base_url();
    let admin = "sk_car_admin_123";
    assert_eq!(check(&Cartesia::new(), &base, admin).await, Err(TtsError::Unauthorized));
    assert_eq!(connect("cartesia", &base, admin, "sonic-3", 16000).await.err(), Some(TtsError::Unauthorized));
    assert!(sim.seen_keys().is_empty());
    assert_eq!(sim.connections(), 0);
}

#[tokio::test]
async fn a_stream_with_no_text_is_done_at_once() {
    let sim = sim().await;
    let TtsStream { text, mut events } = connect("cartesia", &sim.base_url(), KEY, "sonic-3", 16000).await.unwrap();
    drop(text);
    let mut got = Vec::new();
    while let Some(ev) = timeout(Duration::from_secs(2), events.recv()).await.unwrap() {
        got.push(ev);
    }
    assert_eq!(got, [TtsEvent::Done, TtsEvent::Usage { characters: 0 }]);
}

#[tokio::test]
async fn a_first_phrase_is_voiced_before_its_sentence_ends() {
    // A simulator that would hold unflushed text for longer than the check waits: only a
    // request that turns Cartesia's buffering off gets `Sure, ` voiced on its own.
    let cfg = CartesiaSimConfig { max_buffer_delay: Duration::from_secs(60), ..Default::default() };
    let sim = CartesiaSim::start(keys(KEY), cfg).await.unwrap();
    first_phrase_is_voiced("cartesia", &sim.base_url(), KEY, "sonic-3").await;
}
