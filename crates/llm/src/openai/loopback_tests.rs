//! The adapter against the simulator over real loopback sockets.

use crate::sim::{reply_for, Fault, OpenAiSim, OpenAiSimConfig, SimKeys};
use crate::{Llm, LlmError, LlmEvent, LlmRequest, Message, OpenAi, Role};
use secrecy::SecretString;
use std::time::Duration;
use tokio::sync::mpsc;

const KEY: &str = "sk-loopback-key-0123456789";

async fn sim(fault: Option<Fault>, tokens_per_sec: f64) -> OpenAiSim {
    OpenAiSim::start(OpenAiSimConfig {
        keys: SimKeys::from(&[KEY][..]),
        first_token_delay: Duration::from_millis(10),
        tokens_per_sec,
        fault,
    })
    .await
    .unwrap()
}

fn conversation(user: &str) -> Vec<Message> {
    vec![
        Message { role: Role::System, content: "You are a helpful agent.".into() },
        Message { role: Role::User, content: "hello".into() },
        Message { role: Role::Assistant, content: "You said: hello. How else can I help?".into() },
        Message { role: Role::User, content: user.into() },
    ]
}

async fn stream(sim: &OpenAiSim, key: &str, messages: &[Message]) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    OpenAi::new(reqwest::Client::new())
        .stream(LlmRequest { base_url: &base, key: &key, model: "gpt-4o-mini", messages, max_tokens: None })
        .await
}

async fn collect(mut rx: mpsc::Receiver<LlmEvent>) -> Vec<LlmEvent> {
    let mut out = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap() {
        out.push(ev);
    }
    out
}

fn text(events: &[LlmEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::Token(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn bad_key_is_unauthorized_and_never_shown() {
    let s = sim(None, 0.0).await;
    let bad = "sk-bad-key-abcdef123456";
    let err = stream(&s, bad, &conversation("hi")).await.unwrap_err();
    assert_eq!(err, LlmError::Unauthorized);
    assert_eq!(err.code(), "unauthorized");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(bad) && !shown.contains("abcdef123456"), "{shown}");
    }
    assert_eq!(s.seen_keys(), vec![bad.to_string()], "the key reached the wire as a bearer token");
}

#[tokio::test]
async fn story_streams_tokens_then_usage_then_done() {
    let s = sim(None, 0.0).await;
    let messages = conversation("Tell me a story, please");
    let events = collect(stream(&s, KEY, &messages).await.unwrap()).await;
    let story = reply_for("story");
    let n = story.split_whitespace().count();
    assert_eq!(text(&events), story);
    assert_eq!(events.len(), n + 2, "one event per token, then usage and done: {events:?}");
    // Sim counts: Σ(words + 4) = (5+4) + (1+4) + (8+4) + (5+4).
    assert_eq!(events[n], LlmEvent::Usage { input_tokens: 35, output_tokens: n as u64, estimated: false });
    assert_eq!(events[n + 1], LlmEvent::Done { finish_reason: Some("stop".into()) });
    assert_eq!(s.last_request_messages(), messages, "the whole history went out");
    assert_eq!(s.requests(), 1);
}

#[tokio::test]
async fn rate_limit_carries_the_retry_hint() {
    let s = sim(Some(Fault::Status(429)), 0.0).await;
    let err = stream(&s, KEY, &conversation("hi")).await.unwrap_err();
    assert_eq!(err, LlmError::RateLimited { retry_after_ms: Some(1200) });
}

#[tokio::test]
async fn server_errors_keep_their_status() {
    let s = sim(Some(Fault::Status(503)), 0.0).await;
    let err = stream(&s, KEY, &conversation("hi")).await.unwrap_err();
    assert_eq!(err, LlmError::Server { status: 503 });
    s.set_fault(Some(Fault::Status(404)));
    let err = stream(&s, KEY, &conversation("hi")).await.unwrap_err();
    assert_eq!(err, LlmError::BadRequest("The model does not exist or you do not have access to it.".into()));
}

/// A cut connection: the tokens so far, an estimated usage at least the sim's real counts,
/// then `Error(Http)` (the body ended with a transport error, not `[DONE]`), then the end.
#[tokio::test]
async fn dropped_connection_estimates_usage_then_errors() {
    let s = sim(Some(Fault::DropAfterTokens(5)), 0.0).await;
    let messages = conversation("Tell me a story");
    let events = collect(stream(&s, KEY, &messages).await.unwrap()).await;
    assert_eq!(events.len(), 7, "{events:?}");
    assert_eq!(text(&events), "Once upon a time, a");
    let LlmEvent::Usage { input_tokens, output_tokens, estimated } = events[5] else {
        panic!("expected usage, got {:?}", events[5]);
    };
    assert!(estimated);
    let sim_prompt: u64 = messages.iter().map(|m| m.content.split_whitespace().count() as u64 + 4).sum();
    assert!(input_tokens >= sim_prompt, "{input_tokens} < {sim_prompt}");
    assert!(output_tokens >= 5, "{output_tokens}");
    assert!(matches!(events[6], LlmEvent::Error(LlmError::Http(_))), "{:?}", events[6]);
}

#[tokio::test]
async fn dropping_the_receiver_hangs_up() {
    let s = sim(None, 20.0).await;
    let mut rx = stream(&s, KEY, &conversation("story")).await.unwrap();
    assert!(matches!(rx.recv().await, Some(LlmEvent::Token(_))));
    assert_eq!(s.open_streams(), 1);
    drop(rx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while s.open_streams() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the sim still streams to a cancelled client");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn max_tokens_and_trailing_slash_base() {
    let s = sim(None, 0.0).await;
    let base = url::Url::parse(&format!("{}/", s.base_url())).unwrap();
    let key = SecretString::from(KEY.to_string());
    let messages = conversation("what are your hours");
    let rx = OpenAi::new(reqwest::Client::new())
        .stream(LlmRequest {
            base_url: &base,
            key: &key,
            model: "gpt-4o-mini",
            messages: &messages,
            max_tokens: Some(2),
        })
        .await
        .unwrap();
    let events = collect(rx).await;
    assert_eq!(text(&events), "We are");
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("length".into()) }));
}

#[tokio::test]
async fn unreachable_provider_is_an_http_error() {
    let s = sim(None, 0.0).await;
    let base = s.base_url();
    drop(s);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let key = SecretString::from(KEY.to_string());
    let err = OpenAi::new(reqwest::Client::new())
        .stream(LlmRequest { base_url: &base, key: &key, model: "m", messages: &conversation("hi"), max_tokens: None })
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Http(_)), "{err:?}");
    assert!(!err.to_string().contains(KEY));
}
