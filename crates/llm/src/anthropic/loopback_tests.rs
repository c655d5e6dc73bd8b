//! The adapter against the Anthropic simulator over real loopback sockets.

use crate::sim::{reply_for, AnthropicSim, AnthropicSimConfig, Fault, SimKeys};
use crate::test_util::{collect, conversation, sim_prompt_tokens, text};
use crate::{Anthropic, Llm, LlmError, LlmEvent, LlmRequest, Message, Role};
use secrecy::SecretString;
use std::time::Duration;
use tokio::sync::mpsc;

const KEY: &str = "sk-ant-loopback-0123456789";

async fn sim(fault: Option<Fault>, tokens_per_sec: f64) -> AnthropicSim {
    AnthropicSim::start(AnthropicSimConfig {
        keys: SimKeys::from(&[KEY][..]),
        first_token_delay: Duration::from_millis(10),
        tokens_per_sec,
        fault,
    })
    .await
    .unwrap()
}

async fn stream(
    sim: &AnthropicSim,
    key: &str,
    messages: &[Message],
    max_tokens: Option<u32>,
) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    Anthropic::new(reqwest::Client::new())
        .stream(LlmRequest { base_url: &base, key: &key, model: "claude-haiku-4-5", messages, max_tokens })
        .await
}

#[tokio::test]
async fn story_streams_tokens_then_reported_usage_then_done() {
    let s = sim(None, 0.0).await;
    let messages = conversation("Tell me a story, please");
    let events = collect(stream(&s, KEY, &messages, None).await.unwrap()).await;
    let story = reply_for("story");
    let n = story.split_whitespace().count();
    assert_eq!(text(&events), story);
    assert_eq!(events.len(), n + 2, "{events:?}");
    assert_eq!(
        events[n],
        LlmEvent::Usage { input_tokens: sim_prompt_tokens(&messages), output_tokens: n as u64, estimated: false }
    );
    assert_eq!(events[n + 1], LlmEvent::Done { finish_reason: Some("end_turn".into()) });
    assert_eq!(s.last_request_messages(), messages, "system went top-level and came back first");
}

#[tokio::test]
async fn bad_key_is_unauthorized_and_never_shown() {
    let s = sim(None, 0.0).await;
    let bad = "sk-ant-bad-key-abcdef123456";
    let err = stream(&s, bad, &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::Unauthorized);
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(bad) && !shown.contains("abcdef123456"));
    }
    assert_eq!(s.seen_keys(), vec![bad.to_string()], "sent as x-api-key");
}

#[tokio::test]
async fn rate_limit_overload_and_server_errors() {
    let s = sim(Some(Fault::Status(429)), 0.0).await;
    let err = stream(&s, KEY, &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::RateLimited { retry_after_ms: Some(2000) });
    s.set_fault(Some(Fault::Status(529)));
    let err = stream(&s, KEY, &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::Server { status: 529 });
    s.set_fault(Some(Fault::Status(403)));
    let err = stream(&s, KEY, &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::Forbidden);
    s.set_fault(Some(Fault::Status(400)));
    let err = stream(&s, KEY, &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::BadRequest("Your request was malformed.".into()));
}

#[tokio::test]
async fn max_tokens_ends_with_max_tokens() {
    let s = sim(None, 0.0).await;
    let events = collect(stream(&s, KEY, &conversation("what are your hours"), Some(2)).await.unwrap()).await;
    assert_eq!(text(&events), "We are");
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("max_tokens".into()) }));
}

/// A cut after 5 tokens: the reported input stays exact, output is estimated, then an error.
#[tokio::test]
async fn dropped_connection_keeps_reported_input_and_errors() {
    let s = sim(Some(Fault::DropAfterTokens(5)), 0.0).await;
    let messages = conversation("Tell me a story");
    let events = collect(stream(&s, KEY, &messages, None).await.unwrap()).await;
    assert_eq!(events.len(), 7, "{events:?}");
    assert_eq!(text(&events), "Once upon a time, a");
    let LlmEvent::Usage { input_tokens, output_tokens, estimated } = events[5] else {
        panic!("expected usage, got {:?}", events[5]);
    };
    assert!(estimated);
    assert_eq!(input_tokens, sim_prompt_tokens(&messages));
    assert!(output_tokens >= 5, "{output_tokens}");
    assert!(matches!(events[6], LlmEvent::Error(LlmError::Http(_))), "{:?}", events[6]);
}

#[tokio::test]
async fn dropping_the_receiver_hangs_up() {
    let s = sim(None, 20.0).await;
    let mut rx = stream(&s, KEY, &conversation("story"), None).await.unwrap();
    assert!(matches!(rx.recv().await, Some(LlmEvent::Token(_))));
    assert_eq!(s.open_streams(), 1);
    drop(rx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while s.open_streams() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still streaming");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn assistant_first_and_repeated_turns_are_accepted() {
    let s = sim(None, 0.0).await;
    let m = |role, c: &str| Message { role, content: c.into() };
    let messages =
        [m(Role::Assistant, "Hi, thanks for calling."), m(Role::User, "I want to book"), m(Role::User, "tomorrow")];
    let events = collect(stream(&s, KEY, &messages, None).await.unwrap()).await;
    assert_eq!(text(&events), reply_for("I want to book\n\ntomorrow"));
    assert_eq!(s.last_request_messages().len(), 2, "the two user turns merged");
}
