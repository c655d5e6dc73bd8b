//! Polly: one `SynthesizeSpeech` request per sentence, billed as voiced; AWS-shaped refusals.

use crate::util::{audio_bytes, check, connect, drain, first_phrase_is_voiced, keys, quick, send, text};
use tts::{Polly, TtsError, TtsEvent, TtsInput};
use tts_sim::{PollySim, PollySimConfig};

const KEY: &str = "AKIATESTPOLLY0001:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

async fn sim() -> PollySim {
    let cfg = PollySimConfig { voicing: quick(PollySimConfig::default().voicing, 50.0, 10) };
    PollySim::start(keys(KEY), cfg.into()).await.unwrap()
}

#[tokio::test]
async fn each_sentence_is_one_request_billed_as_voiced() {
    let sim = sim().await;
    let mut s = connect("polly", &sim.base_url(), KEY, "neural", 16000).await.unwrap();
    send(&s, [text("Hello there. "), text("How can I "), text("help you today?"), TtsInput::Flush, TtsInput::Close])
        .await;
    let events = drain(&mut s).await;
    // "Hello there." + "How can I help you today?" = 12 + 25 characters, 50 ms each at 16 kHz.
    assert_eq!(audio_bytes(&events), 37 * 800 * 2);
    let tail: Vec<_> = events.iter().filter(|e| !matches!(e, TtsEvent::Audio { .. })).collect();
    assert_eq!(tail, [&TtsEvent::Usage { characters: 37 }, &TtsEvent::Done, &TtsEvent::Usage { characters: 37 }]);
    assert_eq!((sim.service().requests(), sim.received()), (2, 37));
    assert_eq!(sim.seen_keys(), [KEY, KEY]);
}

#[tokio::test]
async fn bad_keys_are_refused_like_aws() {
    let sim = sim().await;
    let base = sim.base_url();
    let polly = Polly::new();
    for bad in ["AKIATESTPOLLY0001:wrong-SECRET", "AKIAUNKNOWN:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "garbage"] {
        assert_eq!(check(&polly, &base, bad).await, Err(TtsError::Unauthorized), "{bad}");
    }
    let mut s = connect("polly", &base, "AKIATESTPOLLY0001:wrong-SECRET", "neural", 16000).await.unwrap();
    send(&s, [text("Hello."), TtsInput::Close]).await;
    let events = drain(&mut s).await;
    assert_eq!(events, [TtsEvent::Error(TtsError::Unauthorized), TtsEvent::Usage { characters: 0 }]);
    assert!(!format!("{events:?}").contains("SECRET"));
    assert_eq!(sim.service().requests(), 0);

    let resp = reqwest::Client::new().get(format!("{base}v1/voices")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers()["x-amzn-ErrorType"].to_str().unwrap().starts_with("MissingAuthenticationTokenException"));
}

#[tokio::test]
async fn an_unknown_engine_ends_the_stream_with_the_validation_error_then_usage() {
    let sim = sim().await;
    let mut s = connect("polly", &sim.base_url(), KEY, "turbo", 8000).await.unwrap();
    send(&s, [text("Hello there."), TtsInput::Flush]).await;
    match drain(&mut s).await.as_slice() {
        [TtsEvent::Error(TtsError::Provider { message }), TtsEvent::Usage { characters: 0 }] => {
            assert!(message.starts_with("ValidationException: 1 validation error"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_first_phrase_is_voiced_before_its_sentence_ends() {
    let sim = sim().await;
    first_phrase_is_voiced("polly", &sim.base_url(), KEY, "neural").await;
}
