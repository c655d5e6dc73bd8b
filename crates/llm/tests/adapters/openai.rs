//! The `openai` adapter's own cases: a base URL with a trailing slash, the model-not-found
//! message, the Responses path (`responses:<model>`), and Groq's `x_groq` usage. Function
//! calling is in `openai_tools`.

use super::{sim, stream};
use llm::{LlmError, LlmEvent, Message};
use llm_sim::testing::{collect, conversation, sim_prompt_tokens, text};
use llm_sim::{reply_for, Api, Fault, LlmSim};

const KEY: &str = "sk-openai-adapter-0123456789";

async fn openai(s: &LlmSim, key: &str, model: &str, messages: &[Message], max_tokens: Option<u32>) -> Vec<LlmEvent> {
    collect(stream("openai", &s.base_url(), key, model, messages, max_tokens).await.unwrap()).await
}

#[tokio::test]
async fn max_tokens_and_trailing_slash_base() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let base = url::Url::parse(&format!("{}/", s.base_url())).unwrap();
    let rx = stream("openai", &base, KEY, "gpt-4o-mini", &conversation("what are your hours"), Some(2)).await;
    let events = collect(rx.unwrap()).await;
    assert_eq!(text(&events), "We are");
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("length".into()) }));
}

#[tokio::test]
async fn unknown_model_is_a_bad_request_with_openais_message() {
    let s = sim(Api::OpenAi, &[KEY], Some(Fault::Status(404))).await;
    let err = stream("openai", &s.base_url(), KEY, "gpt-4o-mini", &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::BadRequest("The model does not exist or you do not have access to it.".into()));
}

/// The same words, counts and finish as the Chat Completions path.
#[tokio::test]
async fn story_over_responses_matches_chat_completions() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let messages = conversation("Tell me a story, please");
    let events = openai(&s, KEY, "responses:gpt-4.1-mini", &messages, None).await;
    assert_eq!(s.last_request_messages(), messages, "system prompt and history went out as input items");
    let chat = openai(&s, KEY, "gpt-4.1-mini", &messages, None).await;
    assert_eq!(events, chat);
    let story = reply_for("story");
    let n = story.split_whitespace().count();
    assert_eq!(text(&events), story);
    assert_eq!(
        events[n],
        LlmEvent::Usage { input_tokens: sim_prompt_tokens(&messages), output_tokens: n as u64, estimated: false }
    );
    assert_eq!(events[n + 1], LlmEvent::Done { finish_reason: Some("stop".into()) });
}

#[tokio::test]
async fn bad_key_over_responses_is_unauthorized() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let bad = "sk-bad-responses-key-987654";
    let err =
        stream("openai", &s.base_url(), bad, "responses:gpt-4.1-mini", &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains(bad));
    assert_eq!(s.seen_keys(), vec![bad.to_string()]);
}

/// `max_output_tokens` ends the response `incomplete`: a `length` finish with real usage.
#[tokio::test]
async fn incomplete_response_is_a_length_finish() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let messages = conversation("what are your hours");
    let events = openai(&s, KEY, "responses:gpt-4o-mini", &messages, Some(2)).await;
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

/// Cut before `response.completed`: tokens so far, an estimate, then the transport error.
#[tokio::test]
async fn dropped_responses_stream_estimates_usage_then_errors() {
    let s = sim(Api::OpenAi, &[KEY], Some(Fault::DropAfterTokens(3))).await;
    let messages = conversation("Tell me a story");
    let events = openai(&s, KEY, "responses:gpt-4.1-mini", &messages, None).await;
    assert_eq!(text(&events), "Once upon a");
    let LlmEvent::Usage { input_tokens, estimated: true, .. } = events[3] else {
        panic!("{:?}", events[3]);
    };
    assert!(input_tokens >= sim_prompt_tokens(&messages));
    assert!(matches!(events[4], LlmEvent::Error(LlmError::Http(_))), "{:?}", events[4]);
}

#[tokio::test]
async fn rate_limit_before_the_responses_stream() {
    let s = sim(Api::OpenAi, &[KEY], Some(Fault::Status(429))).await;
    let err =
        stream("openai", &s.base_url(), KEY, "responses:gpt-4.1-mini", &conversation("hi"), None).await.unwrap_err();
    assert_eq!(err, LlmError::RateLimited { retry_after_ms: Some(1200) });
    let err = stream("openai", &s.base_url(), KEY, "responses:", &conversation("hi"), None).await.unwrap_err();
    assert!(matches!(err, LlmError::BadRequest(_)), "{err:?}");
}

#[tokio::test]
async fn groq_usage_under_x_groq_is_billed_as_reported() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    s.set_x_groq_usage(true);
    let messages = conversation("Tell me a story");
    let rx = stream("groq", &s.base_url(), KEY, "llama-3.1-8b-instant", &messages, Some(3)).await.unwrap();
    assert_eq!(
        collect(rx).await,
        vec![
            LlmEvent::Token("Once".into()),
            LlmEvent::Token(" upon".into()),
            LlmEvent::Token(" a".into()),
            LlmEvent::Usage { input_tokens: sim_prompt_tokens(&messages), output_tokens: 3, estimated: false },
            LlmEvent::Done { finish_reason: Some("length".into()) }
        ]
    );
}
