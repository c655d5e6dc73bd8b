//! The `gemini` adapter's tool cases: `functionDeclarations` and `functionCallingConfig` out,
//! whole `functionCall` parts back (no ids from the sim, as older models send them: the adapter
//! makes them up and never sends them back), results as `functionResponse` parts named after
//! the call, and the thought signature Gemini gave a call sent back with it (Google's stand-in
//! only for calls that came without one).

use super::sim;
use super::tool_rounds::{
    answered, call_answer, calls, end_call, offer, order_status, stream_tools, ASKS_ORDER, ASKS_TWO,
};
use llm::{LlmError, LlmEvent, ToolCall, ToolChoice, Tools};
use llm_sim::testing::{conversation, text};
use llm_sim::Api;
use serde_json::json;

const KEY: &str = "AIzaSyAdapterToolsKey0123456789abcdefgh";
const MODEL: &str = "gemini-2.5-flash";
/// What the simulator signs its calls with (base64 of "sim-thought").
const SIM_SIGNATURE: &str = "c2ltLXRob3VnaHQ=";

#[tokio::test]
async fn a_function_call_and_its_response() {
    let s = sim(Api::Gemini, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let tools = offer(&specs);
    let messages = conversation(ASKS_ORDER);
    let events = stream_tools("google", &s.base_url(), KEY, MODEL, &messages, tools).await.unwrap();
    let found = calls(&events);
    assert_eq!(found.len(), 1, "{events:?}");
    assert!(found[0].id.starts_with("gemini_call_"), "a made-up id: {}", found[0].id);
    assert_eq!(found[0].signature.as_deref(), Some(SIM_SIGNATURE), "the call keeps Gemini's thought signature");
    assert_eq!((found[0].name.as_str(), found[0].arguments.as_str()), ("order_status", r#"{"order_id":"4217"}"#));
    assert_eq!(events, call_answer(&messages, &found[0], "STOP"));
    let sent = s.last_request_body().unwrap();
    assert_eq!(
        sent["tools"],
        json!([{"functionDeclarations": [
            {"name": "order_status", "description": "Look up an order by its number", "parameters": specs[0].parameters},
            {"name": "end_call", "description": "Hang up", "parameters": specs[1].parameters}
        ]}])
    );
    assert!(sent.get("toolConfig").is_none(), "{sent}");

    let next = answered(&messages, &found, &["shipped"]);
    let events = stream_tools("google", &s.base_url(), KEY, MODEL, &next, tools).await.unwrap();
    assert_eq!(text(&events), "I checked: shipped.");
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("STOP".into()) }));
    let sent = s.last_request_body().unwrap();
    assert_eq!(
        sent["contents"][3]["parts"][0],
        json!({"functionCall": {"name": "order_status", "args": {"order_id": "4217"}}, "thoughtSignature": SIM_SIGNATURE}),
        "the signature goes back with its call"
    );
    assert_eq!(
        sent["contents"][4],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "order_status", "response": {"output": "shipped"}}}]})
    );
}

/// Gemini 3 refuses a replayed call without a thought signature: the signature it gave goes
/// back on the first of parallel calls; calls another provider wrote (no signature) get
/// Google's documented stand-in, so either round goes through.
#[tokio::test]
async fn gemini_3_accepts_the_replayed_calls() {
    let s = sim(Api::Gemini, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let tools = offer(&specs);
    let messages = conversation(ASKS_TWO);
    let model = "gemini-3-flash-preview";
    let events = stream_tools("google", &s.base_url(), KEY, model, &messages, tools).await.unwrap();
    let found = calls(&events);
    let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["order_status", "end_call"], "parallel calls in order");
    assert_ne!(found[0].id, found[1].id);
    let next = answered(&messages, &found, &[r#"{"status":"shipped"}"#, "ok"]);
    let events = stream_tools("google", &s.base_url(), KEY, model, &next, tools).await.unwrap();
    assert_eq!(text(&events), "I checked: status shipped, and ok.");
    let parts = &s.last_request_body().unwrap()["contents"][3]["parts"];
    assert_eq!((parts[0]["thoughtSignature"].as_str(), parts[1].get("thoughtSignature")), (Some(SIM_SIGNATURE), None));

    let unsigned: Vec<ToolCall> = found.iter().map(|c| ToolCall { signature: None, ..c.clone() }).collect();
    let next = answered(&messages, &unsigned, &[r#"{"status":"shipped"}"#, "ok"]);
    let events = stream_tools("google", &s.base_url(), KEY, model, &next, tools).await.unwrap();
    assert_eq!(text(&events), "I checked: status shipped, and ok.");
    let parts = &s.last_request_body().unwrap()["contents"][3]["parts"];
    assert_eq!(parts[0]["thoughtSignature"], "skip_thought_signature_validator");
}

#[tokio::test]
async fn forced_function_and_unknown_results() {
    let s = sim(Api::Gemini, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let forced = ToolChoice::Function("end_call".into());
    let tools = Tools { specs: &specs, choice: Some(&forced), parallel: None };
    let messages = conversation("tell me a story");
    let events = stream_tools("google", &s.base_url(), KEY, MODEL, &messages, tools).await.unwrap();
    let found = calls(&events);
    assert_eq!((found.len(), found[0].name.as_str(), found[0].arguments.as_str()), (1, "end_call", "{}"));
    assert_eq!(
        s.last_request_body().unwrap()["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["end_call"]}})
    );
    // A result answering no call cannot be named, so it never leaves the adapter.
    let requests = s.requests();
    let mut wrong = answered(&messages, &found, &["done"]);
    wrong.last_mut().unwrap().tool_call_id = Some("call_9".into());
    let err = stream_tools("google", &s.base_url(), KEY, MODEL, &wrong, tools).await.unwrap_err();
    assert_eq!(err, LlmError::BadRequest("tool result for unknown call id 'call_9'".into()));
    assert_eq!(s.requests(), requests);
}

#[tokio::test]
async fn without_tools_no_tool_fields() {
    let s = sim(Api::Gemini, &[KEY], None).await;
    let call = ToolCall::new("gemini_call_1", "order_status", "{}");
    let history = answered(&conversation(ASKS_ORDER), &[call], &["shipped"]);
    let events = stream_tools("google", &s.base_url(), KEY, MODEL, &history, Tools::default()).await.unwrap();
    assert!(calls(&events).is_empty());
    let sent = s.last_request_body().unwrap();
    let mut keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["contents", "systemInstruction"]);
    let parts: Vec<_> =
        sent["contents"].as_array().unwrap().iter().flat_map(|c| c["parts"].as_array().unwrap()).collect();
    assert!(parts.iter().all(|p| p.get("text").is_some()), "text parts only: {sent}");
}
