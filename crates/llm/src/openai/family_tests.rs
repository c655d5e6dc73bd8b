//! Every OpenAI-compatible family member, as the registry builds it, against the OpenAI sim.

use crate::sim::{reply_for, OpenAiSim, OpenAiSimConfig, SimKeys};
use crate::test_util::{collect, conversation, sim_prompt_tokens, text};
use crate::{compat, registry, LlmError, LlmEvent, LlmRequest};
use secrecy::SecretString;
use std::time::Duration;

const KEY: &str = "gsk_family0123456789abcdef";

async fn sim() -> OpenAiSim {
    OpenAiSim::start(OpenAiSimConfig {
        keys: SimKeys::from(&[KEY][..]),
        first_token_delay: Duration::ZERO,
        tokens_per_sec: 0.0,
        fault: None,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_family_provider_streams_against_the_openai_sim() {
    let s = sim().await;
    let base = s.base_url();
    let key = SecretString::from(KEY.to_string());
    let http = reqwest::Client::new();
    let messages = conversation("what are your hours");
    let reply = reply_for("hours");
    let n = reply.split_whitespace().count() as u64;
    for p in compat::FAMILY {
        let llm = registry::build(p.name, &http).unwrap();
        assert_eq!(llm.name(), p.name);
        let rx = llm
            .stream(LlmRequest {
                base_url: &base,
                key: &key,
                model: "some-model",
                messages: &messages,
                max_tokens: None,
            })
            .await
            .unwrap();
        let events = collect(rx).await;
        assert_eq!(text(&events), reply, "{}", p.name);
        let usage = events.iter().find(|e| matches!(e, LlmEvent::Usage { .. }));
        let expected = if p.include_usage {
            // Asked for: the sim's exact counts.
            LlmEvent::Usage { input_tokens: sim_prompt_tokens(&messages), output_tokens: n, estimated: false }
        } else {
            // Not asked (Mistral, Fireworks, Cerebras): the sim sends none, so an estimate.
            LlmEvent::Usage {
                input_tokens: crate::estimate_input_tokens(&messages),
                output_tokens: crate::estimate_output_tokens(reply.chars().count()),
                estimated: true,
            }
        };
        assert_eq!(usage, Some(&expected), "{}", p.name);
        assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("stop".into()) }), "{}", p.name);
    }
    assert_eq!(s.requests(), compat::FAMILY.len() as u64);
}

#[tokio::test]
async fn groq_usage_under_x_groq_is_billed_as_reported() {
    let s = sim().await;
    s.set_x_groq_usage(true);
    let base = s.base_url();
    let key = SecretString::from(KEY.to_string());
    let llm = registry::build("groq", &reqwest::Client::new()).unwrap();
    let messages = conversation("Tell me a story");
    let rx = llm
        .stream(LlmRequest {
            base_url: &base,
            key: &key,
            model: "llama-3.1-8b-instant",
            messages: &messages,
            max_tokens: Some(3),
        })
        .await
        .unwrap();
    let events = collect(rx).await;
    assert_eq!(
        events,
        vec![
            LlmEvent::Token("Once".into()),
            LlmEvent::Token(" upon".into()),
            LlmEvent::Token(" a".into()),
            LlmEvent::Usage { input_tokens: sim_prompt_tokens(&messages), output_tokens: 3, estimated: false },
            LlmEvent::Done { finish_reason: Some("length".into()) }
        ]
    );
}

#[tokio::test]
async fn family_bad_key_is_unauthorized() {
    let s = sim().await;
    let base = s.base_url();
    let bad = SecretString::from("xai-bad-key-0123456789".to_string());
    for name in ["xai", "deepseek", "openrouter"] {
        let llm = registry::build(name, &reqwest::Client::new()).unwrap();
        let err = llm
            .stream(LlmRequest {
                base_url: &base,
                key: &bad,
                model: "m",
                messages: &conversation("hi"),
                max_tokens: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err, LlmError::Unauthorized, "{name}");
    }
}
