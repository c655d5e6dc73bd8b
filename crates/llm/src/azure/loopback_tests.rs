//! The Azure adapter against the Azure simulator over loopback: both endpoint forms, Responses,
//! refusals.

use crate::sim::replies::tokens;
use crate::sim::{reply_for, AzureSim, AzureSimConfig, Fault, SimKeys};
use crate::test_util::{collect, conversation, sim_prompt_tokens, text};
use crate::{registry, LlmError, LlmEvent, LlmRequest};
use secrecy::SecretString;
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

const KEY: &str = "0123456789abcdef0123456789abcdef";

async fn sim(fault: Option<Fault>) -> AzureSim {
    AzureSim::start(AzureSimConfig {
        keys: SimKeys::from(&[KEY][..]),
        first_token_delay: Duration::from_millis(5),
        tokens_per_sec: 0.0,
        fault,
    })
    .await
    .unwrap()
}

async fn stream(base: &Url, key: &str, model: &str, user: &str) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    let key = SecretString::from(key.to_string());
    let llm = registry::build("azure", &reqwest::Client::new()).unwrap();
    let messages = conversation(user);
    llm.stream(LlmRequest { base_url: base, key: &key, model, messages: &messages, max_tokens: None }).await
}

/// The OpenAI sim's turn for `user`: its tokens, exact usage, `stop`.
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

/// Classic (default and explicit api-version), v1 and Responses all give the same turn.
#[tokio::test]
async fn every_endpoint_form_streams_the_same_turn() {
    let s = sim(None).await;
    let root = s.base_url();
    let classic = Url::parse(&format!("{root}?api-version=2025-04-01-preview")).unwrap();
    let v1 = Url::parse(&format!("{root}openai/v1")).unwrap();
    for (base, model) in
        [(&root, "gpt-4o-mini"), (&classic, "gpt-4o-mini"), (&v1, "gpt-4.1-mini"), (&root, "responses:gpt-4.1-mini")]
    {
        let events = collect(stream(base, KEY, model, "what are your hours").await.unwrap()).await;
        assert_eq!(events, expected("what are your hours"), "{base} {model}");
    }
    assert_eq!(s.requests(), 4);
    assert_eq!(s.seen_keys(), vec![KEY.to_string(); 4]);
}

#[tokio::test]
async fn bad_key_is_unauthorized_and_never_shown() {
    let s = sim(None).await;
    let bad = "ffffffffffffffffffffffffffff0000";
    for model in ["gpt-4o-mini", "responses:gpt-4o-mini"] {
        let err = stream(&s.base_url(), bad, model, "hi").await.unwrap_err();
        assert_eq!(err, LlmError::Unauthorized);
        assert!(!format!("{err} {err:?}").contains(bad));
    }
}

#[tokio::test]
async fn missing_deployment_and_throttling() {
    let s = sim(Some(Fault::Status(404))).await;
    let err = stream(&s.base_url(), KEY, "gpt-4o-mini", "hi").await.unwrap_err();
    let LlmError::BadRequest(msg) = err else { panic!("{err:?}") };
    assert!(msg.starts_with("The API deployment for this resource does not exist"), "{msg}");
    s.set_fault(Some(Fault::Status(429)));
    let err = stream(&s.base_url(), KEY, "gpt-4o-mini", "hi").await.unwrap_err();
    assert_eq!(err, LlmError::RateLimited { retry_after_ms: Some(2000) });
}

/// A drop after the prompt-filter chunk and two tokens: estimate, then the transport error.
#[tokio::test]
async fn dropped_stream_estimates_usage() {
    let s = sim(Some(Fault::DropAfterTokens(2))).await;
    let events = collect(stream(&s.base_url(), KEY, "gpt-4o-mini", "Tell me a story").await.unwrap()).await;
    assert_eq!(text(&events), "Once upon");
    assert!(matches!(events[2], LlmEvent::Usage { estimated: true, .. }), "{:?}", events[2]);
    assert!(matches!(events[3], LlmEvent::Error(LlmError::Http(_))), "{:?}", events[3]);
}
