//! `POST /v1/responses` over real HTTP with a plain client, checked against E1's event sequence.

use super::*;
use crate::sim::reply_for;
use serde_json::{json, Value};

const KEY: &str = "sk-sim-responses-123456";

async fn sim() -> OpenAiSim {
    let cfg = OpenAiSimConfig {
        keys: SimKeys::from(&[KEY][..]),
        first_token_delay: Duration::ZERO,
        tokens_per_sec: 0.0,
        ..Default::default()
    };
    OpenAiSim::start(cfg).await.unwrap()
}

async fn post(sim: &OpenAiSim, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/responses", sim.base_url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `(event name, payload)` of every SSE event.
async fn events(resp: reqwest::Response) -> Vec<(String, Value)> {
    let body = resp.bytes().await.unwrap();
    let mut parser = crate::sse::SseParser::new();
    let mut out = Vec::new();
    parser.push(&body, |e| out.push((e.event.unwrap_or_default(), serde_json::from_str(&e.data).unwrap()))).unwrap();
    parser.finish(|_| panic!("the body ends on a blank line")).unwrap();
    out
}

#[tokio::test]
async fn text_stream_follows_the_spec_sequence() {
    let s = sim().await;
    let body = json!({
        "model": "gpt-4.1-mini", "stream": true, "store": false, "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "what are your hours"}]}]
    });
    let resp = post(&s, KEY, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    let evs = events(resp).await;
    let reply = reply_for("hours");
    let n = reply.split_whitespace().count();
    let names: Vec<&str> = evs.iter().map(|(name, _)| name.as_str()).collect();
    let mut expected =
        vec!["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"];
    expected.extend(std::iter::repeat_n("response.output_text.delta", n));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, expected);
    for (i, (name, v)) in evs.iter().enumerate() {
        assert_eq!(v["type"], name.as_str());
        assert_eq!(v["sequence_number"], i, "{name}");
    }
    assert_eq!(evs[0].1["response"]["status"], "in_progress");
    assert!(evs[0].1["response"]["usage"].is_null());
    let item_id = evs[2].1["item"]["id"].as_str().unwrap();
    assert!(item_id.starts_with("msg_"));
    let text: String = evs[4..4 + n].iter().map(|(_, v)| v["delta"].as_str().unwrap()).collect();
    assert_eq!(text, reply);
    assert_eq!(evs[4].1["item_id"], item_id);
    assert_eq!(evs[4 + n].1["text"], reply.as_str());
    let done = &evs.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], reply.as_str());
    // ("Be brief." 2 + 4) + ("what are your hours" 4 + 4)
    assert_eq!(done["usage"]["input_tokens"], 14);
    assert_eq!(done["usage"]["output_tokens"], n);
    assert_eq!(done["usage"]["total_tokens"], 14 + n);
}

#[tokio::test]
async fn function_call_stream_and_whole_response() {
    let s = sim().await;
    s.set_tool_call(Some(ToolScript { name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() }));
    let body = json!({"model": "m", "stream": true, "input": "weather in Paris?"});
    let evs = events(post(&s, KEY, &body).await).await;
    let added = &evs[2].1["item"];
    assert_eq!(added["type"], "function_call");
    assert_eq!(added["arguments"], "");
    let deltas: String = evs
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, v)| {
            assert_eq!(v["item_id"], added["id"]);
            v["delta"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(deltas, r#"{"city":"Paris"}"#);
    let (name, args_done) = &evs[evs.len() - 3];
    assert_eq!(name, "response.function_call_arguments.done");
    assert_eq!(args_done["arguments"], r#"{"city":"Paris"}"#);
    let done = &evs.last().unwrap().1["response"];
    assert_eq!(done["output"][0]["call_id"], added["call_id"]);
    s.set_tool_call(None);
    let whole: Value =
        post(&s, KEY, &json!({"model": "m", "input": "bye", "max_output_tokens": 2})).await.json().await.unwrap();
    assert_eq!(whole["object"], "response");
    assert_eq!(whole["status"], "incomplete");
    assert_eq!(whole["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(whole["output"][0]["content"][0]["text"], "Goodbye, and");
}

#[tokio::test]
async fn bad_key_and_bad_input_are_openai_errors() {
    let s = sim().await;
    let resp = post(&s, "sk-nope-000000000", &json!({"model": "m", "input": "hi"})).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let resp = post(&s, KEY, &json!({"model": "m"})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "input");
}
