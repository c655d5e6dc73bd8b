//! The `openai` adapter's Responses path against the OpenAI simulator over loopback.

use crate::sim::{reply_for, Fault, OpenAiSim, OpenAiSimConfig, SimKeys, ToolScript};
use crate::test_util::{collect, conversation, sim_prompt_tokens, text};
use crate::{registry, LlmError, LlmEvent, LlmRequest, Message, ToolCall};
use secrecy::SecretString;
use std::time::Duration;
use tokio::sync::mpsc;

const KEY: &str = "sk-responses-key-0123456789";

async fn sim(fault: Option<Fault>) -> OpenAiSim {
    OpenAiSim::start(OpenAiSimConfig {
        keys: SimKeys::from(&[KEY][..]),
        first_token_delay: Duration::from_millis(5),
        tokens_per_sec: 0.0,
        fault,
    })
    .await
    .unwrap()
}

async fn stream(
    sim: &OpenAiSim,
    key: &str,
    model: &str,
    messages: &[Message],
    max_tokens: Option<u32>,
) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    let base = sim.base_url();
    let key = SecretString::from(key.to_string());
    let llm = registry::build("openai", &reqwest::Client::new()).unwrap();
    llm.stream(LlmRequest { base_url: &base, key: &key, model, messages, max_tokens }).await
}

/// The same words, counts and finish as the Chat Completions path.
#[tokio::test]
async fn story_over_responses_matches_chat_completions() {
    let s = sim(None).await;
    let messages = conversation("Tell me a story, please");
    let events = collect(stream(&s, KEY, "responses:gpt-4.1-mini", &messages, None).await.unwrap()).await;
    let chat = collect(stream(&s, KEY, "gpt-4.1-mini", &messages, None).await.unwrap()).await;
    assert_eq!(events, chat);
    let story = reply_for("story");
    let n = story.split_whitespace().count();
    assert_eq!(text(&events), story);
    assert_eq!(
        events[n],
        LlmEvent::Usage { input_tokens: sim_prompt_tokens(&messages), output_tokens: n as u64, estimated: false }
    );
    assert_eq!(events[n + 1], LlmEvent::Done { finish_reason: Some("stop".into()) });
    assert_eq!(s.last_request_messages(), messages, "system prompt and history went out as input items");
}

#[tokio::test]
async fn bad_key_is_unauthorized() {
    let s = sim(None).await;
    let bad = "sk-bad-responses-key-987654";
    let err = stream(&s, bad, "responses:gpt-4.1-mini", &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains(bad));
    assert_eq!(s.seen_keys(), vec![bad.to_string()]);
}

/// `max_output_tokens` ends the response `incomplete`: a `length` finish with real usage.
#[tokio::test]
async fn incomplete_response_is_a_length_finish() {
    let s = sim(None).await;
    let messages = conversation("what are your hours");
    let events = collect(stream(&s, KEY, "responses:gpt-4o-mini", &messages, Some(2)).await.unwrap()).await;
    assert_eq!(
        events,
        vec![
            LlmEvent::Token("We".into()),
            LlmEvent::Token(" are".into()),
            LlmEvent::Usage { input_tokens: sim_prompt_tokens(&messages), output_tokens: 2, estimated: false },
            LlmEvent::Done { finish_reason: Some("length".into()) },
        ]
    );
}

#[tokio::test]
async fn function_call_arguments_stream_into_one_tool_call() {
    let s = sim(None).await;
    let arguments = r#"{"city":"Paris","unit":"celsius"}"#;
    s.set_tool_call(Some(ToolScript { name: "get_weather".into(), arguments: arguments.into() }));
    let events =
        collect(stream(&s, KEY, "responses:gpt-4.1-mini", &conversation("weather?"), None).await.unwrap()).await;
    let [LlmEvent::ToolCall(ToolCall { id, name, arguments: got }), LlmEvent::Usage { output_tokens, estimated: false, .. }, LlmEvent::Done { finish_reason }] =
        &events[..]
    else {
        panic!("{events:?}");
    };
    assert!(id.starts_with("call_"), "{id}");
    assert_eq!((name.as_str(), got.as_str()), ("get_weather", arguments));
    assert_eq!(*output_tokens, 5, "the sim streams the arguments in 8-character deltas");
    assert_eq!(finish_reason.as_deref(), Some("tool_calls"));
}

/// Cut before `response.completed`: tokens so far, an estimate, then the transport error.
#[tokio::test]
async fn dropped_stream_estimates_usage_then_errors() {
    let s = sim(Some(Fault::DropAfterTokens(3))).await;
    let messages = conversation("Tell me a story");
    let events = collect(stream(&s, KEY, "responses:gpt-4.1-mini", &messages, None).await.unwrap()).await;
    assert_eq!(text(&events), "Once upon a");
    let LlmEvent::Usage { input_tokens, estimated: true, .. } = events[3] else {
        panic!("{:?}", events[3]);
    };
    assert!(input_tokens >= sim_prompt_tokens(&messages));
    assert!(matches!(events[4], LlmEvent::Error(LlmError::Http(_))), "{:?}", events[4]);
}

#[tokio::test]
async fn rate_limit_before_the_stream() {
    let s = sim(Some(Fault::Status(429))).await;
    let err = stream(&s, KEY, "responses:gpt-4.1-mini", &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::RateLimited { retry_after_ms: Some(1200) });
    let err = stream(&s, KEY, "responses:", &conversation("hi"), None).await.unwrap_err();
    assert!(matches!(err, LlmError::BadRequest(_)), "{err:?}");
}
