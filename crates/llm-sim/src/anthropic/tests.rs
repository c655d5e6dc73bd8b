//! The simulator over real loopback HTTP, checked against the wire spec with a plain client.

use super::RETRY_AFTER_S;
use crate::testing::sse_events;
use crate::{reply_for, Api, Fault, LlmSim, SimConfig, SimKeys};
use serde_json::{json, Value};

const KEY: &str = "sk-ant-sim-test-123456";

async fn sim() -> LlmSim {
    LlmSim::start(Api::Anthropic, SimConfig::instant(SimKeys::from(&[KEY][..]))).await.unwrap()
}

async fn post(s: &LlmSim, key: Option<&str>, version: bool, body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(format!("{}v1/messages", s.base_url())).json(body);
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    if version {
        req = req.header("anthropic-version", "2023-06-01");
    }
    req.send().await.unwrap()
}

fn story(stream: bool) -> Value {
    json!({
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,
        "system": "You are a helpful agent.",
        "messages": [{"role": "user", "content": "Tell me a story"}],
        "stream": stream
    })
}

#[tokio::test]
async fn bad_key_is_anthropics_401_without_echo() {
    let s = sim().await;
    let bad = "sk-ant-wrong-999999999";
    let resp = post(&s, Some(bad), true, &story(true)).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("request-id"));
    let text = resp.text().await.unwrap();
    assert!(!text.contains(bad));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"], json!({"type": "authentication_error", "message": "invalid x-api-key"}));
    assert!(v["request_id"].as_str().is_some_and(|id| id.starts_with("req_")));
    let resp = post(&s, None, true, &story(true)).await;
    assert_eq!(resp.status(), 401);
    let resp = post(&s, Some(KEY), false, &story(true)).await;
    assert_eq!(resp.status(), 400, "anthropic-version is required");
    assert_eq!(s.requests(), 3);
}

#[tokio::test]
async fn malformed_requests_are_invalid_request_errors() {
    let s = sim().await;
    for body in [
        json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "m", "max_tokens": 5}),
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]}),
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": ""}]}),
    ] {
        let resp = post(&s, Some(KEY), true, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{body}");
    }
}

#[tokio::test]
async fn non_streaming_message() {
    let s = sim().await;
    let v: Value = post(&s, Some(KEY), true, &story(false)).await.json().await.unwrap();
    let story = reply_for("story");
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], story.as_str());
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], (5 + 4) + (4 + 4));
    assert_eq!(v["usage"]["output_tokens"], story.split_whitespace().count());
}

#[tokio::test]
async fn stream_has_anthropics_named_events_in_order() {
    let s = sim().await;
    let resp = post(&s, Some(KEY), true, &story(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    let events = sse_events(&resp.bytes().await.unwrap());
    let n = reply_for("story").split_whitespace().count();
    let names: Vec<_> = events.iter().map(|(name, _)| name.clone().unwrap()).collect();
    assert_eq!(names.len(), n + 6);
    assert_eq!(&names[..3], &["message_start", "content_block_start", "ping"]);
    assert!(names[3..3 + n].iter().all(|e| e == "content_block_delta"));
    assert_eq!(&names[3 + n..], &["content_block_stop", "message_delta", "message_stop"]);
    for (name, data) in &events {
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"].as_str(), name.as_deref(), "type equals the event name");
    }
    let start: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(start["message"]["usage"]["input_tokens"], 17);
    let delta: Value = serde_json::from_str(&events[n + 4].1).unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], n);
}

#[tokio::test]
async fn overloaded_fault_is_529_overloaded_error() {
    let s = sim().await;
    s.set_fault(Some(Fault::Status(529)));
    let resp = post(&s, Some(KEY), true, &story(true)).await;
    assert_eq!(resp.status(), 529);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], json!({"type": "overloaded_error", "message": "Overloaded"}));
    s.set_fault(Some(Fault::Status(429)));
    let resp = post(&s, Some(KEY), true, &story(true)).await;
    assert_eq!(resp.headers()["retry-after"], RETRY_AFTER_S);
}

#[tokio::test]
async fn models_is_auth_checked_and_paginated() {
    let s = sim().await;
    let client = reqwest::Client::new();
    let get = |key: &'static str| {
        client
            .get(format!("{}v1/models?limit=1", s.base_url()))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .send()
    };
    assert_eq!(get("sk-ant-nope-12345678").await.unwrap().status(), 401);
    let v: Value = get(KEY).await.unwrap().json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["has_more"], true);
    assert_eq!(v["first_id"], "claude-haiku-4-5");
}

fn with_tools(stream: bool, messages: Value) -> Value {
    json!({
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,
        "messages": messages,
        "tools": [
            {"name": "order_status", "description": "Look up an order", "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}}},
            {"name": "end_call", "input_schema": {"type": "object", "properties": {}}}
        ],
        "stream": stream
    })
}

/// A named tool streams as a `tool_use` block: start with `input: {}`, the arguments as
/// `input_json_delta` fragments, stop; then `stop_reason: "tool_use"`.
#[tokio::test]
async fn tool_use_streams_as_input_json_deltas() {
    let s = sim().await;
    let asks = json!([{"role": "user", "content": "what is the order status of 4217, then end call"}]);
    let resp = post(&s, Some(KEY), true, &with_tools(true, asks)).await;
    assert_eq!(resp.status(), 200);
    let events: Vec<Value> =
        sse_events(&resp.bytes().await.unwrap()).iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..3], ["message_start", "ping", "content_block_start"]);
    assert_eq!(&kinds[kinds.len() - 2..], ["message_delta", "message_stop"]);
    let starts: Vec<&Value> = events.iter().filter(|e| e["type"] == "content_block_start").collect();
    assert_eq!(
        starts[0]["content_block"],
        json!({"type": "tool_use", "id": "call_1", "name": "order_status", "input": {}})
    );
    assert_eq!((starts[1]["index"].clone(), starts[1]["content_block"]["name"].clone()), (json!(1), json!("end_call")));
    let args = |index: u64| -> String {
        events
            .iter()
            .filter(|e| e["type"] == "content_block_delta" && e["index"] == index)
            .map(|e| e["delta"]["partial_json"].as_str().unwrap())
            .collect()
    };
    assert_eq!(args(0), r#"{"order_id":"4217"}"#);
    assert_eq!(args(1), "{}");
    let delta = &events[events.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 4 + 1, "one per call name, one per argument word");
    let whole: Value =
        post(&s, Some(KEY), true, &with_tools(false, json!([{"role": "user", "content": "order status 12"}])))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(
        whole["content"],
        json!([{"type": "tool_use", "id": "call_1", "name": "order_status", "input": {"order_id": "12"}}])
    );
    assert_eq!(whole["stop_reason"], "tool_use");
}

#[tokio::test]
async fn tool_results_are_checked() {
    let s = sim().await;
    let turns = |result_for: &str| {
        json!([
            {"role": "user", "content": "order status 4217"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "order_status", "input": {"order_id": "4217"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": result_for, "content": [{"type": "text", "text": "shipped"}]}]}
        ])
    };
    let v: Value = post(&s, Some(KEY), true, &with_tools(false, turns("call_1"))).await.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "I checked: shipped.");
    for (body, message) in [
        (with_tools(false, turns("call_7")), "tool result for unknown call id 'call_7'"),
        (
            story(false)
                .as_object()
                .cloned()
                .map(|mut b| {
                    b.insert("messages".into(), turns("call_1"));
                    Value::Object(b)
                })
                .unwrap(),
            "Requests which include `tool_use` or `tool_result` blocks must define tools.",
        ),
    ] {
        let resp = post(&s, Some(KEY), true, &body).await;
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], json!({"type": "invalid_request_error", "message": message}));
    }
}
