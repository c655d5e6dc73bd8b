//! The `azure` adapter's own cases: both endpoint forms (classic with or without an explicit
//! api-version, v1) and Responses give the same turn, with tools too, the key check on both
//! forms, and Azure's deployment-not-found refusal.

use super::tool_rounds::{calls, order_status, stream_tools};
use super::{sim, stream};
use llm::{LlmError, LlmEvent, Message, Tools};
use llm_sim::replies::tokens;
use llm_sim::testing::{collect, conversation, sim_prompt_tokens};
use llm_sim::{reply_for, Api, Fault};
use secrecy::SecretString;
use serde_json::json;
use url::Url;

const KEY: &str = "0123456789abcdef0123456789abcdef";

/// The OpenAI API's turn for `user`: its tokens, exact usage, `stop`.
fn expected(user: &str) -> Vec<LlmEvent> {
    let reply = reply_for(user);
    let toks = tokens(&reply);
    let n = toks.len() as u64;
    let mut events: Vec<LlmEvent> = toks.into_iter().map(|t| LlmEvent::Token(t.to_string())).collect();
    events.push(LlmEvent::Usage {
        input_tokens: sim_prompt_tokens(&conversation(user)),
        output_tokens: n,
        estimated: false,
    });
    events.push(LlmEvent::Done { finish_reason: Some("stop".into()) });
    events
}

#[tokio::test]
async fn every_endpoint_form_streams_the_same_turn() {
    let s = sim(Api::Azure, &[KEY], None).await;
    let root = s.base_url();
    let classic = Url::parse(&format!("{root}?api-version=2025-04-01-preview")).unwrap();
    let v1 = Url::parse(&format!("{root}openai/v1")).unwrap();
    let messages = conversation("what are your hours");
    for (base, model) in
        [(&root, "gpt-4o-mini"), (&classic, "gpt-4o-mini"), (&v1, "gpt-4.1-mini"), (&root, "responses:gpt-4.1-mini")]
    {
        let events = collect(stream("azure", base, KEY, model, &messages, None).await.unwrap()).await;
        assert_eq!(events, expected("what are your hours"), "{base} {model}");
    }
    assert_eq!(s.requests(), 4);
    assert_eq!(s.seen_keys(), vec![KEY.to_string(); 4]);
}

#[tokio::test]
async fn bad_key_over_responses_is_unauthorized() {
    let s = sim(Api::Azure, &[KEY], None).await;
    let bad = "ffffffffffffffffffffffffffff0000";
    let err = stream("azure", &s.base_url(), bad, "responses:gpt-4o-mini", &conversation("hi"), None).await;
    let err = err.unwrap_err();
    assert_eq!(err, LlmError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains(bad));
}

#[tokio::test]
async fn key_check_on_the_v1_endpoint() {
    let s = sim(Api::Azure, &[KEY], None).await;
    let http = reqwest::Client::new();
    let v1 = s.base_url().join("openai/v1").unwrap();
    assert_eq!(llm::validate_key("azure", &http, &v1, &SecretString::from(KEY.to_string())).await, Ok(()));
    let bad = SecretString::from("nope".to_string());
    assert_eq!(llm::validate_key("azure", &http, &v1, &bad).await, Err(LlmError::Unauthorized));
    assert_eq!(s.requests(), 0, "a key check is not a completion");
}

#[tokio::test]
async fn missing_deployment_is_a_bad_request() {
    let s = sim(Api::Azure, &[KEY], Some(Fault::Status(404))).await;
    let err = stream("azure", &s.base_url(), KEY, "gpt-4o-mini", &conversation("hi"), None).await.unwrap_err();
    let LlmError::BadRequest(msg) = err else { panic!("{err:?}") };
    assert!(msg.starts_with("The API deployment for this resource does not exist"), "{msg}");
}

/// Every endpoint form calls the named tool in OpenAI's shape and voices its result.
#[tokio::test]
async fn every_endpoint_form_calls_tools() {
    let s = sim(Api::Azure, &[KEY], None).await;
    let root = s.base_url();
    let v1 = Url::parse(&format!("{root}openai/v1")).unwrap();
    let specs = [order_status()];
    let tools = Tools { specs: &specs, choice: None, parallel: Some(false) };
    for (base, model) in [(&root, "gpt-4o-mini"), (&v1, "gpt-4.1-mini"), (&root, "responses:gpt-4.1-mini")] {
        let mut messages = conversation("order status 4217 please");
        let events = stream_tools("azure", base, KEY, model, &messages, tools).await.unwrap();
        let call = calls(&events)[0].clone();
        assert_eq!((call.name.as_str(), call.arguments.as_str()), ("order_status", r#"{"order_id":"4217"}"#));
        assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("tool_calls".into()) }), "{base} {model}");
        let body = s.last_request_body().unwrap();
        assert_eq!(body["parallel_tool_calls"], false, "{base} {model}");
        messages.push(Message::assistant_calls("", vec![call]));
        messages.push(Message::tool_result("call_1", "\"on its way\""));
        let events = stream_tools("azure", base, KEY, model, &messages, tools).await.unwrap();
        assert_eq!(llm_sim::testing::text(&events), "I checked: on its way.", "{base} {model}");
    }
    let body = s.last_request_body().unwrap();
    assert_eq!(
        body["input"][4],
        json!({"type": "function_call", "call_id": "call_1", "name": "order_status", "arguments": "{\"order_id\":\"4217\"}"})
    );
}
