//! Deepgram Aura: each phrase voiced as it comes, within the flush limit, usage right after
//! each flush, `Done` after the last `Flushed`, models the provider lacks. Flux TTS: phrases
//! voiced without a flush, a turn per flush, its own rates.

use crate::util::{audio_bytes, connect, drain, first_phrase_is_voiced, keys, quick, send, text};
use secrecy::SecretString;
use tts::{DeepgramTts, Tts, TtsError, TtsEvent, TtsInput, TtsRequest};
use tts_sim::{DeepgramTtsSim, DeepgramTtsSimConfig, Voicing};

const KEY: &str = "dg-sim-good-0123456789";

async fn sim() -> DeepgramTtsSim {
    let cfg = DeepgramTtsSimConfig { voicing: quick(Voicing::default(), 20.0, 10), ..Default::default() };
    DeepgramTtsSim::start(keys(KEY), cfg).await.unwrap()
}

#[tokio::test]
async fn a_flush_mid_turn_reports_usage_at_once_and_done_waits_for_the_last_flushed() {
    let sim = sim().await;
    let mut s = connect("deepgram", &sim.base_url(), KEY, "aura-2", 16000).await.unwrap();
    send(&s, [text("Hello there. "), TtsInput::Flush, text("How are you today?"), TtsInput::Close]).await;
    let events = drain(&mut s).await;
    assert_eq!(audio_bytes(&events), 31 * 50 * 16 * 2);
    let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
    let last_audio = events.iter().rposition(|e| matches!(e, TtsEvent::Audio { .. })).unwrap();
    assert!(last_audio < done, "Done waits for the second Flushed");
    assert_eq!(events.first(), Some(&TtsEvent::Usage { characters: 13 }), "usage right after the flush");
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: 31 }));
}

#[tokio::test]
async fn models_deepgram_lacks_are_refused_before_a_socket_opens() {
    let sim = sim().await;
    let base = sim.base_url();
    let key = SecretString::from(KEY.to_string());
    let err = DeepgramTts::new()
        .connect(TtsRequest { base_url: &base, key: &key, model: "", voice: "nova-3", sample_rate: 16000 })
        .await
        .err();
    assert_eq!(err, Some(TtsError::Provider { message: "HTTP 400: No such model/version combination found.".into() }));
    assert_eq!(sim.connections(), 0);
}

#[tokio::test]
async fn a_phrase_is_voiced_before_the_turn_ends() {
    let sim = sim().await;
    first_phrase_is_voiced("deepgram", &sim.base_url(), KEY, "aura-2").await;
}

#[tokio::test]
async fn a_long_turn_stays_within_the_flush_limit_and_is_voiced_whole() {
    let cfg = DeepgramTtsSimConfig { voicing: quick(Voicing::default(), 50.0, 5), ..Default::default() };
    let sim = DeepgramTtsSim::start(keys(KEY), cfg).await.unwrap();
    let mut s = connect("deepgram", &sim.base_url(), KEY, "aura-2", 16000).await.unwrap();
    let phrases: Vec<String> = (0..30).map(|i| format!("Step {i:02}. ")).collect();
    send(&s, phrases.iter().map(|p| text(p))).await;
    send(&s, [TtsInput::Flush, TtsInput::Close]).await;
    let events = drain(&mut s).await;
    assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{:?}", events.last());
    let chars: usize = phrases.iter().map(|p| p.len()).sum();
    assert_eq!(audio_bytes(&events), chars * 50 * 16 * 2, "every phrase voiced, none refused");
    assert!(events.contains(&TtsEvent::Done));
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: chars as u64 }));
}

#[tokio::test]
async fn flux_voices_a_phrase_without_a_flush_and_a_turn_per_flush() {
    let sim = sim().await;
    let mut s = first_phrase_is_voiced("deepgram", &sim.base_url(), KEY, "flux").await;
    // The text before a tool call's pause is one turn, the reply after it another.
    send(&s, [text("I will check. "), TtsInput::Flush, text("It is open."), TtsInput::Close]).await;
    let events = drain(&mut s).await;
    assert!(!events.iter().any(|e| matches!(e, TtsEvent::Error(_))), "{events:?}");
    let chars = "Sure, I will check. It is open.".len();
    // The first phrase's first audio was taken by the helper.
    assert!(audio_bytes(&events) >= (chars - 6) * 50 * 16 * 2, "{}", audio_bytes(&events));
    let done = events.iter().position(|e| *e == TtsEvent::Done).expect("Done");
    assert!(events.iter().rposition(|e| matches!(e, TtsEvent::Audio { .. })).unwrap() < done);
    assert_eq!(events.last(), Some(&TtsEvent::Usage { characters: chars as u64 }));
    assert_eq!(sim.received(), chars as u64);
}

#[tokio::test]
async fn flux_takes_its_own_rates_and_aura_models_stay_on_v1() {
    let sim = sim().await;
    let mut s = connect("deepgram", &sim.base_url(), KEY, "flux", 44100).await.unwrap();
    send(&s, [text("Hi."), TtsInput::Close]).await;
    assert_eq!(audio_bytes(&drain(&mut s).await), 3 * 50 * 441 / 10 * 2);
    // 44.1 kHz is Flux's alone.
    let err = connect("deepgram", &sim.base_url(), KEY, "aura-2", 44100).await.err();
    assert_eq!(err, Some(TtsError::UnsupportedSampleRate(44100)));
    assert_eq!(sim.connections(), 1);
}
