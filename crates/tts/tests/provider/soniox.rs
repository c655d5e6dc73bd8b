//! Soniox: streams multiplexed on one socket, each keyed by its own config message.

use crate::util::{check, connect, drain, keys, quick, two_utterances};
use tts::{Soniox, TtsError, TtsEvent};
use tts_sim::{SonioxSim, SonioxSimConfig, Voicing};

const KEY: &str = "soniox-sim-good-0123456789";

async fn sim() -> SonioxSim {
    let cfg = SonioxSimConfig { voicing: quick(Voicing::default(), 20.0, 10), ..Default::default() };
    SonioxSim::start(keys(KEY), cfg.into()).await.unwrap()
}

#[tokio::test]
async fn text_after_a_flush_opens_a_second_stream_on_the_same_socket() {
    let sim = sim().await;
    let (events, _) = two_utterances("soniox", &sim.base_url(), KEY, "tts-rt-v2", "One two.").await;
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: 14 }));
    assert_eq!(sim.service().streams_opened(), 2);
    assert_eq!(sim.seen_keys().len(), 2, "each stream's config carries the key");
    assert_eq!(sim.connections(), 1);
}

#[tokio::test]
async fn a_bad_key_is_refused_in_the_stream() {
    let sim = sim().await;
    let bad = "soniox-wrong-secret-9876";
    let mut s = connect("soniox", &sim.base_url(), bad, "tts-rt-v2", 16000).await.unwrap();
    let events = drain(&mut s).await;
    assert_eq!(events.first(), Some(&TtsEvent::Error(TtsError::Unauthorized)), "{events:?}");
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: 0 }));
    let err = check(&Soniox, &sim.base_url(), bad).await.err().unwrap();
    assert!(!format!("{err} {err:?}").contains("9876"));
}
