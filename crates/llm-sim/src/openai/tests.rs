//! The simulator over real loopback HTTP, checked against the wire spec with a plain client.

use super::RETRY_AFTER_MS;
use crate::testing::sse_events;
use crate::{reply_for, Api, Fault, LlmSim, SimConfig, SimKeys};
use llm::Message;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KEY: &str = "sk-sim-test-key-123456";

async fn sim(cfg: SimConfig) -> LlmSim {
    LlmSim::start(Api::OpenAi, SimConfig { keys: SimKeys::from(&[KEY][..]), ..cfg }).await.unwrap()
}

fn fast() -> SimConfig {
    SimConfig::instant(SimKeys::default())
}

fn url(sim: &LlmSim, path: &str) -> String {
    format!("{}{path}", sim.base_url())
}

async fn post(sim: &LlmSim, key: Option<&str>, body: &str) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url(sim, "/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

fn story_request(stream: bool, include_usage: bool) -> String {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful agent."},
            {"role": "user", "content": "Tell me a story"}
        ],
        "stream": stream,
        "stream_options": {"include_usage": include_usage}
    })
    .to_string()
}

#[tokio::test]
async fn base_url_shape() {
    let s = sim(fast()).await;
    assert_eq!(s.base_url().as_str(), format!("http://127.0.0.1:{}/v1", s.addr().port()));
}

#[tokio::test]
async fn bad_or_missing_key_is_openai_401_without_echo() {
    let s = sim(fast()).await;
    let bad = "sk-wrong-key-999999999";
    let resp = post(&s, Some(bad), &story_request(true, true)).await;
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(bad));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})
    );
    let resp = post(&s, None, &story_request(true, true)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(s.requests(), 2);
    assert_eq!(s.seen_keys(), vec![bad.to_string()]);
}

#[tokio::test]
async fn keys_added_at_runtime_are_accepted() {
    let s = sim(fast()).await;
    let new = "sk-added-later-0000000";
    assert_eq!(post(&s, Some(new), &story_request(false, false)).await.status(), 401);
    s.keys().add(new);
    assert_eq!(post(&s, Some(new), &story_request(false, false)).await.status(), 200);
}

#[tokio::test]
async fn malformed_requests_are_openai_400s() {
    let s = sim(fast()).await;
    for (body, param) in [
        ("{not json", Value::Null),
        (r#"{"messages":[{"role":"user","content":"hi"}]}"#, Value::Null),
        (r#"{"model":"gpt-4o-mini"}"#, json!("messages")),
        (r#"{"model":"gpt-4o-mini","messages":[{"content":"hi"}]}"#, json!("messages[0].role")),
    ] {
        let resp = post(&s, Some(KEY), body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(v["error"]["param"], param, "{body}");
    }
}

#[tokio::test]
async fn non_streaming_completion_with_usage() {
    let s = sim(fast()).await;
    let resp = post(&s, Some(KEY), &story_request(false, false)).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    let story = reply_for("story");
    assert_eq!(v["choices"][0]["message"]["content"], story.as_str());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // (5 words + 4) + (4 words + 4)
    assert_eq!(v["usage"]["prompt_tokens"], 17);
    assert_eq!(v["usage"]["completion_tokens"], story.split_whitespace().count());
    assert_eq!(
        s.last_request_messages(),
        vec![
            Message::new(llm::Role::System, "You are a helpful agent."),
            Message::new(llm::Role::User, "Tell me a story"),
        ]
    );
}

/// Reads the raw SSE body, returning each event's data with the time it arrived.
async fn events(mut resp: reqwest::Response) -> Vec<(Instant, String)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        let now = Instant::now();
        buf.extend_from_slice(&chunk);
        let complete = buf.windows(2).rposition(|w| w == b"\n\n").map_or(0, |i| i + 2);
        out.extend(sse_events(&buf[..complete]).into_iter().map(|(_, data)| (now, data)));
        buf.drain(..complete);
    }
    assert!(buf.is_empty(), "the body ends on a blank line");
    out
}

#[tokio::test]
async fn stream_matches_the_spec_shape_and_pacing() {
    let s = sim(SimConfig { first_token_delay: Duration::from_millis(150), tokens_per_sec: 200.0, ..fast() }).await;
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "what are your hours"}],
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    let t0 = Instant::now();
    let resp = post(&s, Some(KEY), &body.to_string()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let evs = events(resp).await;
    let reply = reply_for("hours");
    let n = reply.split_whitespace().count();
    assert_eq!(evs.len(), 1 + n + 3, "role, tokens, finish, usage, [DONE]");
    let json = |i: usize| serde_json::from_str::<Value>(&evs[i].1).unwrap();

    let role = json(0);
    assert_eq!(role["object"], "chat.completion.chunk");
    assert_eq!(role["choices"][0]["delta"], json!({"role": "assistant", "content": "", "refusal": null}));
    assert!(role["usage"].is_null());
    let text: String =
        (1..=n).map(|i| json(i)["choices"][0]["delta"]["content"].as_str().unwrap().to_string()).collect();
    assert_eq!(text, reply);
    assert_eq!(json(1)["choices"][0]["delta"]["content"], "We");
    assert_eq!(json(2)["choices"][0]["delta"]["content"], " are");
    let finish = json(n + 1);
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let usage = json(n + 2);
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 4 + 4);
    assert_eq!(usage["usage"]["completion_tokens"], n);
    assert_eq!(usage["usage"]["total_tokens"], 8 + n);
    assert_eq!(evs[n + 3].1, "[DONE]");

    // Paced: nothing is sent before its slot (lower bounds only, so load cannot make it flaky).
    assert!(evs[1].0 - t0 >= Duration::from_millis(150));
    assert!(evs[n].0 - t0 >= Duration::from_millis(150 + 5 * (n as u64 - 1)));
}

#[tokio::test]
async fn no_usage_chunk_unless_asked() {
    let s = sim(fast()).await;
    let evs = events(post(&s, Some(KEY), &story_request(true, false)).await).await;
    assert_eq!(evs.last().unwrap().1, "[DONE]");
    assert!(evs.iter().all(|(_, d)| d == "[DONE]" || serde_json::from_str::<Value>(d).unwrap()["usage"].is_null()));
}

#[tokio::test]
async fn max_tokens_truncates_with_length() {
    let s = sim(fast()).await;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "story"}], "max_completion_tokens": 3});
    let v: Value = post(&s, Some(KEY), &body.to_string()).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Once upon a");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn status_fault_429_has_retry_hint() {
    let s = sim(SimConfig { fault: Some(Fault::Status(429)), ..fast() }).await;
    let resp = post(&s, Some(KEY), &story_request(true, true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after-ms"], RETRY_AFTER_MS);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    s.set_fault(None);
    assert_eq!(post(&s, Some(KEY), &story_request(true, true)).await.status(), 200);
}

#[tokio::test]
async fn models_is_auth_checked() {
    let s = sim(fast()).await;
    let client = reqwest::Client::new();
    let resp = client.get(url(&s, "/models")).bearer_auth("sk-nope-123456789").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = client.get(url(&s, "/models")).bearer_auth(KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "gpt-4o-mini");
    let resp = client.get(url(&s, "/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "Invalid URL (GET /v1/nothing)");
}
