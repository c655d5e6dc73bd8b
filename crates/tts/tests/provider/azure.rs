//! Azure: the first phrase and then each sentence one SSML request on one socket, usage after
//! `Done`, an empty flush.

use crate::util::{connect, drain, first_phrase_is_voiced, keys, quick, send, text};
use std::time::Duration;
use tokio::time::timeout;
use tts::{TtsEvent, TtsInput};
use tts_sim::{AzureTtsSim, AzureTtsSimConfig};

const KEY: &str = "azure-tts-key-0123456789abcdef";

async fn sim() -> AzureTtsSim {
    let cfg = AzureTtsSimConfig { voicing: quick(AzureTtsSimConfig::default().voicing, 20.0, 10) };
    AzureTtsSim::start(keys(KEY), cfg.into()).await.unwrap()
}

#[tokio::test]
async fn sentences_become_requests_on_one_socket_and_usage_follows_done() {
    let sim = sim().await;
    let mut s = connect("azure", &sim.base_url(), KEY, "neural", 16000).await.unwrap();
    let pieces = [text("Hello there, thanks for calling. How can"), text(" I help you today?")];
    send(&s, pieces.into_iter().chain([TtsInput::Flush, TtsInput::Close])).await;
    let events = drain(&mut s).await;
    assert_eq!(sim.service().requests(), 2);
    assert_eq!(sim.connections(), 1);
    let voice = tts::registry::default_voice("azure").unwrap();
    assert_eq!(sim.service().voices_requested(), [voice, voice]);
    let chars = "Hello there, thanks for calling. How can I help you today?".chars().count() as u64;
    assert_eq!(sim.received(), chars);
    let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
    assert!(events[..done].iter().all(|e| !matches!(e, TtsEvent::Usage { .. })));
    assert_eq!(events.get(done + 1), Some(&TtsEvent::Usage { characters: chars }));
}

#[tokio::test]
async fn a_first_phrase_is_its_own_request_before_its_sentence_ends() {
    let sim = sim().await;
    let mut s = first_phrase_is_voiced("azure", &sim.base_url(), KEY, "neural").await;
    send(&s, [text("we are open until nine"), text(" tonight. "), TtsInput::Flush, TtsInput::Close]).await;
    drain(&mut s).await;
    assert_eq!(sim.service().requests(), 2, "the phrase, then the rest of its sentence");
}

#[tokio::test]
async fn a_flush_with_nothing_buffered_is_done_at_once() {
    let sim = sim().await;
    let mut s = connect("azure", &sim.base_url(), KEY, "neural", 16000).await.unwrap();
    send(&s, [text("   "), TtsInput::Flush]).await;
    let first = timeout(Duration::from_secs(2), s.events.recv()).await.unwrap();
    assert_eq!(first, Some(TtsEvent::Done));
    s.text = tokio::sync::mpsc::channel(1).0; // drops the real sender
    assert_eq!(drain(&mut s).await, [TtsEvent::Usage { characters: 0 }, TtsEvent::Usage { characters: 0 }]);
    assert_eq!(sim.service().requests(), 0);
}
