//! The `anthropic` adapter's own cases: Anthropic's overload and malformed-request refusals, a
//! conversation Messages would refuse as sent (assistant first, repeated user turns), and tool
//! use (`tool_use` blocks streamed as `input_json_delta`, results as `tool_result` blocks).

use super::tool_rounds::{
    answered, call_1, call_answer, calls, end_call, offer, order_call, order_status, stream_tools, ASKS_ORDER, ASKS_TWO,
};
use super::{sim, stream};
use llm::{LlmError, LlmEvent, Message, Role, ToolChoice, Tools};
use llm_sim::testing::{collect, conversation, text};
use llm_sim::{reply_for, Api, Fault};
use serde_json::{json, Value};

const KEY: &str = "sk-ant-adapter-0123456789";

#[tokio::test]
async fn overload_and_malformed_refusals() {
    let s = sim(Api::Anthropic, &[KEY], None).await;
    for (status, expected) in
        [(529, LlmError::Server { status: 529 }), (400, LlmError::BadRequest("Your request was malformed.".into()))]
    {
        s.set_fault(Some(Fault::Status(status)));
        let err = stream("anthropic", &s.base_url(), KEY, "claude-haiku-4-5", &conversation("hi"), None).await;
        assert_eq!(err.unwrap_err(), expected, "{status}");
    }
}

#[tokio::test]
async fn assistant_first_and_repeated_turns_are_accepted() {
    let s = sim(Api::Anthropic, &[KEY], None).await;
    let m = |role, c: &str| Message::new(role, c);
    let messages =
        [m(Role::Assistant, "Hi, thanks for calling."), m(Role::User, "I want to book"), m(Role::User, "tomorrow")];
    let rx = stream("anthropic", &s.base_url(), KEY, "claude-haiku-4-5", &messages, None).await.unwrap();
    let events: Vec<LlmEvent> = collect(rx).await;
    assert_eq!(text(&events), reply_for("I want to book\n\ntomorrow"));
    assert_eq!(s.last_request_messages().len(), 2, "the two user turns merged");
}

const MODEL: &str = "claude-haiku-4-5";

/// A named tool is called with the arguments the caller said, `stop_reason: "tool_use"`; the
/// answered call gets the result voiced.
#[tokio::test]
async fn a_tool_call_and_its_result() {
    let s = sim(Api::Anthropic, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let tools = offer(&specs);
    let messages = conversation(ASKS_ORDER);
    let events = stream_tools("anthropic", &s.base_url(), KEY, MODEL, &messages, tools).await.unwrap();
    let call = order_call();
    assert_eq!(events, call_answer(&messages, &call, "tool_use"));
    let sent = s.last_request_body().unwrap();
    assert_eq!(sent["tools"][0]["input_schema"], specs[0].parameters);
    assert!(sent.get("tool_choice").is_none(), "the default needs no tool_choice: {sent}");

    let next = answered(&messages, &[call], &[r#"{"status":"shipped","eta":"Tuesday"}"#]);
    let events = stream_tools("anthropic", &s.base_url(), KEY, MODEL, &next, tools).await.unwrap();
    assert_eq!(text(&events), "I checked: eta Tuesday, status shipped.");
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("end_turn".into()) }));
    let sent = s.last_request_body().unwrap();
    let results = &sent["messages"][4]["content"];
    assert_eq!(results[0]["type"], "tool_result", "{sent}");
    assert_eq!(s.last_request_messages()[4..], next[4..], "the sim read the call and the result back");
}

/// Two named tools are two calls of one answer, unless parallel calls are off.
#[tokio::test]
async fn parallel_calls_unless_disabled() {
    let s = sim(Api::Anthropic, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let messages = conversation(ASKS_TWO);
    let both = offer(&specs);
    let events = stream_tools("anthropic", &s.base_url(), KEY, MODEL, &messages, both).await.unwrap();
    let names: Vec<String> = calls(&events).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["order_status", "end_call"]);
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("tool_use".into()) }));
    let one = Tools { parallel: Some(false), ..both };
    let events = stream_tools("anthropic", &s.base_url(), KEY, MODEL, &messages, one).await.unwrap();
    assert_eq!(calls(&events).len(), 1);
    assert_eq!(
        s.last_request_body().unwrap()["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
}

#[tokio::test]
async fn forced_function_none_and_unknown_results() {
    let s = sim(Api::Anthropic, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let forced = ToolChoice::Function("end_call".into());
    let tools = Tools { specs: &specs, choice: Some(&forced), parallel: None };
    let messages = conversation("tell me a story");
    let events = stream_tools("anthropic", &s.base_url(), KEY, MODEL, &messages, tools).await.unwrap();
    assert_eq!(calls(&events), [call_1("end_call", "{}")]);
    let none = Tools { choice: Some(&ToolChoice::None), ..tools };
    let events = stream_tools("anthropic", &s.base_url(), KEY, MODEL, &conversation("end call"), none).await.unwrap();
    assert!(calls(&events).is_empty() && !text(&events).is_empty(), "{events:?}");

    let call = call_1("end_call", "{}");
    let mut wrong = answered(&messages, &[call], &["done"]);
    wrong.last_mut().unwrap().tool_call_id = Some("call_9".into());
    let err = stream_tools("anthropic", &s.base_url(), KEY, MODEL, &wrong, tools).await.unwrap_err();
    assert_eq!(err, LlmError::BadRequest("tool result for unknown call id 'call_9'".into()));
}

/// No tools offered: no tool fields, and a history with tool calls goes as text (which
/// Anthropic accepts; tool blocks it would refuse).
#[tokio::test]
async fn without_tools_no_tool_fields() {
    let s = sim(Api::Anthropic, &[KEY], None).await;
    let call = call_1("order_status", "{}");
    let history = answered(&conversation(ASKS_ORDER), &[call], &["shipped"]);
    let events = stream_tools("anthropic", &s.base_url(), KEY, MODEL, &history, Tools::default()).await.unwrap();
    assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some("end_turn".into()) }));
    let sent = s.last_request_body().unwrap();
    let mut keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["max_tokens", "messages", "model", "stream", "system"]);
    let blocks = sent["messages"].as_array().unwrap().iter().filter(|m| m["content"].is_array()).count();
    assert_eq!(blocks, 0, "only text turns: {sent}");
    assert_eq!(sent["messages"][4]["content"], Value::from("(result of order_status: shipped)"));
}
