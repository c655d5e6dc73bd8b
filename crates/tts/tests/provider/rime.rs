//! Rime: sentences are voiced as they complete, without a flush, and a reply's first phrase
//! before its sentence ends; exact refusals.

use crate::util::{connect, first_phrase_is_voiced, keys, quick, send, text};
use std::time::Duration;
use tokio::time::timeout;
use tts::TtsEvent;
use tts_sim::{RimeSim, RimeSimConfig, Voicing};

const KEY: &str = "rime-sim-good-0123456789";

async fn sim() -> RimeSim {
    let cfg = RimeSimConfig { voicing: quick(Voicing::default(), 20.0, 10) };
    RimeSim::start(keys(KEY), cfg).await.unwrap()
}

#[tokio::test]
async fn a_completed_sentence_is_voiced_without_a_flush() {
    let sim = sim().await;
    let mut s = connect("rime", &sim.base_url(), KEY, "mistv2", 16000).await.unwrap();
    send(&s, [text("This is a long answer that the caller will interrupt. ")]).await;
    let first = timeout(Duration::from_secs(5), s.events.recv()).await.unwrap();
    assert!(matches!(first, Some(TtsEvent::Audio { .. })), "{first:?}");
}

#[tokio::test]
async fn a_first_phrase_is_voiced_before_its_sentence_ends() {
    let sim = sim().await;
    first_phrase_is_voiced("rime", &sim.base_url(), KEY, "mistv2").await;
}
