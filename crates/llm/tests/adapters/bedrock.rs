//! The `bedrock` adapter's own cases: SigV4 (any region) and API-key auth give the same turn,
//! every kind of wrong credential is refused, a malformed key never reaches the wire, and tool
//! use (`toolConfig` out, `toolUse` blocks streamed back, `toolResult` blocks).

use super::tool_rounds::{
    answered, call_1, call_answer, calls, end_call, offer, order_call, order_status, stream_tools, ASKS_ORDER, ASKS_TWO,
};
use super::{sim, stream};
use llm::{LlmError, LlmEvent, ToolChoice, Tools};
use llm_sim::replies::tokens;
use llm_sim::testing::{collect, conversation, sim_prompt_tokens, text};
use llm_sim::{reply_for, Api};
use secrecy::SecretString;
use serde_json::json;
use url::Url;

const KEY: &str = "AKIDLOOPBACK0001:wJalrXUtnFEMI/K7MDENG+bPxRfiCYLOOPBACK";
const API_KEY: &str = "ABSKbedrockApiKeyLoopback0123";
const MODEL: &str = "amazon.nova-lite-v1:0";

/// The sim's words and counts, with Converse's `end_turn`.
#[tokio::test]
async fn signed_and_api_key_streams_give_the_same_turn() {
    let s = sim(Api::Bedrock, &[KEY, API_KEY], None).await;
    let messages = conversation("what are your hours");
    let reply = reply_for("what are your hours");
    let mut expected: Vec<LlmEvent> = tokens(&reply).into_iter().map(|t| LlmEvent::Token(t.to_string())).collect();
    expected.push(LlmEvent::Usage {
        input_tokens: sim_prompt_tokens(&messages),
        output_tokens: tokens(&reply).len() as u64,
        estimated: false,
    });
    expected.push(LlmEvent::Done { finish_reason: Some("end_turn".into()) });
    let regional = Url::parse(&format!("{}?region=eu-west-1", s.base_url())).unwrap();
    for (base, key) in [(&s.base_url(), KEY), (&regional, KEY), (&s.base_url(), API_KEY)] {
        let events = collect(stream("bedrock", base, key, MODEL, &messages, None).await.unwrap()).await;
        assert_eq!(events, expected, "{base}");
    }
    assert_eq!(s.seen_keys(), vec![KEY.to_string(), KEY.to_string(), API_KEY.to_string()]);
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_and_never_shown() {
    let s = sim(Api::Bedrock, &[KEY, API_KEY], None).await;
    let wrong_secret = "AKIDLOOPBACK0001:notTheSecretAtAll0123456789";
    let unknown_id = "AKIDUNKNOWN9999:wJalrXUtnFEMI/K7MDENG+bPxRfiCYLOOPBACK";
    for key in [wrong_secret, unknown_id, "ABSKnotAcceptedKey"] {
        let err = stream("bedrock", &s.base_url(), key, MODEL, &conversation("hi"), None).await.unwrap_err();
        assert_eq!(err, LlmError::Unauthorized, "{key}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("notTheSecret") && !shown.contains("wJalr"), "{shown}");
    }
    let err = stream("bedrock", &s.base_url(), "AKID:", MODEL, &conversation("hi"), None).await.unwrap_err();
    assert!(matches!(err, LlmError::BadRequest(_)), "{err:?}");
    assert_eq!(s.requests(), 3, "a malformed key never reaches the wire");
}

/// A signed ListFoundationModels with the wrong secret is `Unauthorized` (AWS's 403
/// `InvalidSignatureException`).
#[tokio::test]
async fn key_check_refuses_a_wrong_secret() {
    let s = sim(Api::Bedrock, &[KEY], None).await;
    let key = SecretString::from("AKIDLOOPBACK0001:wrongSecret".to_string());
    let err = llm::validate_key("bedrock", &reqwest::Client::new(), &s.base_url(), &key).await.unwrap_err();
    assert_eq!(err, LlmError::Unauthorized);
    assert!(!format!("{err} {err:?}").contains("wrongSecret"));
}

#[tokio::test]
async fn a_tool_use_and_its_result() {
    let s = sim(Api::Bedrock, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let tools = offer(&specs);
    let messages = conversation(ASKS_ORDER);
    let events = stream_tools("bedrock", &s.base_url(), KEY, MODEL, &messages, tools).await.unwrap();
    let call = order_call();
    assert_eq!(events, call_answer(&messages, &call, "tool_use"));
    let sent = s.last_request_body().unwrap();
    assert_eq!(sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"], json!({"json": specs[0].parameters}));
    assert!(sent["toolConfig"].get("toolChoice").is_none(), "{sent}");

    let next = answered(&messages, &[call], &[r#"{"status":"shipped"}"#]);
    let events = stream_tools("bedrock", &s.base_url(), KEY, MODEL, &next, tools).await.unwrap();
    assert_eq!(text(&events), "I checked: status shipped.");
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("end_turn".into()) }));
    let sent = s.last_request_body().unwrap();
    assert_eq!(
        sent["messages"][4]["content"],
        json!([{"toolResult": {"toolUseId": "call_1", "content": [{"json": {"status": "shipped"}}]}}])
    );
    assert_eq!(s.last_request_messages()[4..], next[4..], "the sim read the call and the result back");
}

#[tokio::test]
async fn parallel_forced_and_unknown_results() {
    let s = sim(Api::Bedrock, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let tools = offer(&specs);
    let events = stream_tools("bedrock", &s.base_url(), KEY, MODEL, &conversation(ASKS_TWO), tools).await.unwrap();
    let names: Vec<String> = calls(&events).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["order_status", "end_call"]);

    let forced = ToolChoice::Function("end_call".into());
    let forcing = Tools { choice: Some(&forced), ..tools };
    let messages = conversation("tell me a story");
    let events = stream_tools("bedrock", &s.base_url(), KEY, MODEL, &messages, forcing).await.unwrap();
    let call = call_1("end_call", "{}");
    assert_eq!(calls(&events), std::slice::from_ref(&call));
    assert_eq!(s.last_request_body().unwrap()["toolConfig"]["toolChoice"], json!({"tool": {"name": "end_call"}}));

    let mut wrong = answered(&messages, &[call], &["done"]);
    wrong.last_mut().unwrap().tool_call_id = Some("call_9".into());
    let err = stream_tools("bedrock", &s.base_url(), KEY, MODEL, &wrong, tools).await.unwrap_err();
    assert_eq!(err, LlmError::BadRequest("tool result for unknown call id 'call_9'".into()));
}

/// No tools (or `ToolChoice::None`, which Converse lacks): no `toolConfig`, and the history's
/// calls go as text (Converse refuses tool blocks without one).
#[tokio::test]
async fn without_tools_no_tool_config() {
    let s = sim(Api::Bedrock, &[KEY], None).await;
    let specs = [order_status()];
    let call = call_1("order_status", "{}");
    let history = answered(&conversation(ASKS_ORDER), &[call], &["shipped"]);
    let none = Tools { specs: &specs, choice: Some(&ToolChoice::None), parallel: None };
    for tools in [Tools::default(), none] {
        let events = stream_tools("bedrock", &s.base_url(), KEY, MODEL, &history, tools).await.unwrap();
        assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("end_turn".into()) }));
        let sent = s.last_request_body().unwrap();
        let mut keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["messages", "system"]);
        assert_eq!(sent["messages"][4]["content"], json!([{"text": "(result of order_status: shipped)"}]));
    }
}
