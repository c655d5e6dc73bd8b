//! The Bedrock adapter against the Bedrock simulator over loopback: SigV4 and API-key auth,
//! event-stream decoding, refusals.

use crate::sim::replies::tokens;
use crate::sim::{reply_for, BedrockSim, BedrockSimConfig, Fault, SimKeys};
use crate::test_util::{collect, conversation, sim_prompt_tokens, text};
use crate::{registry, LlmError, LlmEvent, LlmRequest};
use secrecy::SecretString;
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

const KEY: &str = "AKIDLOOPBACK0001:wJalrXUtnFEMI/K7MDENG+bPxRfiCYLOOPBACK";
const API_KEY: &str = "ABSKbedrockApiKeyLoopback0123";

async fn sim(fault: Option<Fault>) -> BedrockSim {
    BedrockSim::start(BedrockSimConfig {
        keys: SimKeys::from(&[KEY, API_KEY][..]),
        first_token_delay: Duration::from_millis(5),
        tokens_per_sec: 0.0,
        fault,
    })
    .await
    .unwrap()
}

async fn stream(
    base: &Url,
    key: &str,
    user: &str,
    max_tokens: Option<u32>,
) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    let key = SecretString::from(key.to_string());
    let llm = registry::build("bedrock", &reqwest::Client::new()).unwrap();
    let messages = conversation(user);
    llm.stream(LlmRequest {
        base_url: base,
        key: &key,
        model: "amazon.nova-lite-v1:0",
        messages: &messages,
        max_tokens,
    })
    .await
}

/// The OpenAI sim's words and counts, with Converse's `end_turn`.
#[tokio::test]
async fn signed_and_api_key_streams_give_the_same_turn() {
    let s = sim(None).await;
    let reply = reply_for("what are your hours");
    let mut expected: Vec<LlmEvent> = tokens(&reply).into_iter().map(|t| LlmEvent::Token(t.to_string())).collect();
    expected.push(LlmEvent::Usage {
        input_tokens: sim_prompt_tokens(&conversation("what are your hours")),
        output_tokens: tokens(&reply).len() as u64,
        estimated: false,
    });
    expected.push(LlmEvent::Done { finish_reason: Some("end_turn".into()) });
    let regional = Url::parse(&format!("{}?region=eu-west-1", s.base_url())).unwrap();
    for (base, key) in [(&s.base_url(), KEY), (&regional, KEY), (&s.base_url(), API_KEY)] {
        let events = collect(stream(base, key, "what are your hours", None).await.unwrap()).await;
        assert_eq!(events, expected, "{base}");
    }
    assert_eq!(s.seen_keys(), vec![KEY.to_string(), KEY.to_string(), API_KEY.to_string()]);
    assert_eq!(s.last_request_messages(), conversation("what are your hours"), "system, history, user turn");
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_and_never_shown() {
    let s = sim(None).await;
    let wrong_secret = "AKIDLOOPBACK0001:notTheSecretAtAll0123456789";
    let unknown_id = "AKIDUNKNOWN9999:wJalrXUtnFEMI/K7MDENG+bPxRfiCYLOOPBACK";
    for key in [wrong_secret, unknown_id, "ABSKnotAcceptedKey"] {
        let err = stream(&s.base_url(), key, "hi", None).await.unwrap_err();
        assert_eq!(err, LlmError::Unauthorized, "{key}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("notTheSecret") && !shown.contains("wJalr"), "{shown}");
    }
    let err = stream(&s.base_url(), "AKID:", "hi", None).await.unwrap_err();
    assert!(matches!(err, LlmError::BadRequest(_)), "{err:?}");
    assert_eq!(s.requests(), 3, "a malformed key never reaches the wire");
}

#[tokio::test]
async fn max_tokens_and_refusals() {
    let s = sim(None).await;
    let events = collect(stream(&s.base_url(), KEY, "Tell me a story", Some(3)).await.unwrap()).await;
    assert_eq!(text(&events), "Once upon a");
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("max_tokens".into()) }));
    s.set_fault(Some(Fault::Status(403)));
    assert_eq!(stream(&s.base_url(), KEY, "hi", None).await.unwrap_err(), LlmError::Forbidden);
    s.set_fault(Some(Fault::Status(429)));
    assert_eq!(
        stream(&s.base_url(), KEY, "hi", None).await.unwrap_err(),
        LlmError::RateLimited { retry_after_ms: None }
    );
}

/// Cut mid-stream (no `metadata`): the tokens so far, an estimate, then the transport error.
#[tokio::test]
async fn dropped_stream_estimates_usage_then_errors() {
    let s = sim(Some(Fault::DropAfterTokens(4))).await;
    let events = collect(stream(&s.base_url(), KEY, "Tell me a story", None).await.unwrap()).await;
    assert_eq!(text(&events), "Once upon a time,");
    assert!(matches!(events[4], LlmEvent::Usage { estimated: true, .. }), "{:?}", events[4]);
    assert!(matches!(events[5], LlmEvent::Error(LlmError::Http(_))), "{:?}", events[5]);
}
