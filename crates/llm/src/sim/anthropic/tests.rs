//! The simulator over real loopback HTTP, checked against the wire spec with a plain client.

use super::*;
use crate::sim::reply_for;
use serde_json::{json, Value};

const KEY: &str = "sk-ant-sim-test-123456";

async fn sim() -> AnthropicSim {
    AnthropicSim::start(AnthropicSimConfig {
        keys: SimKeys::from(&[KEY][..]),
        first_token_delay: Duration::ZERO,
        tokens_per_sec: 0.0,
        fault: None,
    })
    .await
    .unwrap()
}

async fn post(s: &AnthropicSim, key: Option<&str>, version: bool, body: &Value) -> reqwest::Response {
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
    let body = resp.bytes().await.unwrap();
    let mut parser = crate::sse::SseParser::new();
    let mut events = Vec::new();
    parser.push(&body, |e| events.push(e)).unwrap();
    let n = reply_for("story").split_whitespace().count();
    let names: Vec<_> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    assert_eq!(names.len(), n + 6);
    assert_eq!(&names[..3], &["message_start", "content_block_start", "ping"]);
    assert!(names[3..3 + n].iter().all(|e| e == "content_block_delta"));
    assert_eq!(&names[3 + n..], &["content_block_stop", "message_delta", "message_stop"]);
    for e in &events {
        let v: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["type"].as_str(), e.event.as_deref(), "type equals the event name");
    }
    let start: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(start["message"]["usage"]["input_tokens"], 17);
    let delta: Value = serde_json::from_str(&events[n + 4].data).unwrap();
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
    assert_eq!(resp.headers()["retry-after"], handlers::RETRY_AFTER_S);
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

#[tokio::test]
async fn drop_stops_the_server() {
    let s = sim().await;
    let url = format!("{}v1/models", s.base_url());
    drop(s);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(reqwest::Client::new().get(url).send().await.is_err());
}
