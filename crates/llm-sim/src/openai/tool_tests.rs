//! Chat Completions function calling over real HTTP with a plain client, checked against D1's
//! tool-call deltas.

use crate::testing::sse_events;
use crate::{Api, LlmSim, SimConfig, SimKeys};
use serde_json::{json, Value};

const KEY: &str = "sk-sim-tools-123456";

async fn sim() -> LlmSim {
    LlmSim::start(Api::OpenAi, SimConfig::instant(SimKeys::from(&[KEY][..]))).await.unwrap()
}

async fn post(sim: &LlmSim, body: &Value) -> reqwest::Response {
    let url = format!("{}/chat/completions", sim.base_url());
    reqwest::Client::new().post(url).bearer_auth(KEY).json(body).send().await.unwrap()
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "order_status", "description": "Look up an order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}},
        {"type": "function", "function": {"name": "end_call", "parameters": {"type": "object", "properties": {}}}}
    ])
}

/// The chunks of a streamed answer (without `[DONE]`).
async fn chunks(resp: reqwest::Response) -> Vec<Value> {
    let data: Vec<String> = sse_events(&resp.bytes().await.unwrap()).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect()
}

/// Two named tools: per call a first delta with index, id, type, name and empty arguments, then
/// its fragments; the first delta carries the role; the finish reads `tool_calls`.
#[tokio::test]
async fn parallel_calls_stream_as_openai_deltas() {
    let s = sim().await;
    let body = json!({
        "model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true}, "tools": tools(),
        "messages": [{"role": "user", "content": "Order status of 4 2 1 7, then end call."}]
    });
    let chunks = chunks(post(&s, &body).await).await;
    let deltas: Vec<&Value> = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "order_status", "arguments": ""}}
        ]})
    );
    let starts: Vec<(u64, &str, &str)> = deltas
        .iter()
        .filter(|d| d.get("id").is_some())
        .map(|d| (d["index"].as_u64().unwrap(), d["id"].as_str().unwrap(), d["function"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(starts, [(0, "call_1", "order_status"), (1, "call_2", "end_call")]);
    let arguments = |index: u64| -> String {
        deltas.iter().filter(|d| d["index"] == index).filter_map(|d| d["function"]["arguments"].as_str()).collect()
    };
    assert_eq!(arguments(0), r#"{"order_id":"4217"}"#);
    assert_eq!(arguments(1), "{}");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = &chunks[chunks.len() - 1]["usage"];
    // 1 + 3 words of arguments (order, id, 4217), and 1 for the argument-less call.
    assert_eq!(usage["completion_tokens"], 5);
    assert!(chunks.iter().all(|c| c["choices"][0]["delta"].get("content").is_none_or(Value::is_null)));
}

#[tokio::test]
async fn whole_answer_has_message_tool_calls_and_parallel_can_be_turned_off() {
    let s = sim().await;
    let body = json!({
        "model": "m", "tools": tools(), "parallel_tool_calls": false,
        "messages": [{"role": "user", "content": "order status 12 and end call"}]
    });
    let v: Value = post(&s, &body).await.json().await.unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "call_1", "type": "function", "function": {"name": "order_status", "arguments": "{\"order_id\":\"12\"}"}}])
    );
}

/// The follow-up turn: the assistant's calls and the tool message go back, the reply voices the
/// result; the sim read them as messages.
#[tokio::test]
async fn results_are_voiced() {
    let s = sim().await;
    let body = json!({
        "model": "m", "tools": tools(),
        "messages": [
            {"role": "user", "content": "order status 4217"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "order_status", "arguments": "{\"order_id\":\"4217\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"status\":\"shipped\"}"}
        ]
    });
    let v: Value = post(&s, &body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "I checked: status shipped.");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let kept = s.last_request_messages();
    assert_eq!(kept[1].tool_calls[0].name, "order_status");
    assert_eq!(kept[2].tool_call_id.as_deref(), Some("call_1"));
    // user 3 + 4, assistant 0 + 4 plus its call's 1 + 3, tool 1 + 4
    assert_eq!(v["usage"]["prompt_tokens"], 20);
}

#[tokio::test]
async fn unpaired_results_and_calls_are_openais_400s() {
    let s = sim().await;
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "end_call", "arguments": "{}"}});
    for (messages, start) in [
        (
            json!([{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]),
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
        ),
        (
            json!([{"role": "user", "content": "end call"}, {"role": "assistant", "tool_calls": [call]}, {"role": "user", "content": "?"}]),
            "An assistant message with 'tool_calls' must be followed by tool messages",
        ),
    ] {
        let resp = post(&s, &json!({"model": "m", "tools": tools(), "messages": messages})).await;
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["message"].as_str().unwrap().starts_with(start), "{v}");
    }
    let resp =
        post(&s, &json!({"model": "m", "tool_choice": "auto", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), 400, "tool_choice without tools");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "tool_choice");
    let no_id = json!([{"role": "tool", "content": "x"}]);
    let v: Value = post(&s, &json!({"model": "m", "messages": no_id})).await.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages[0].tool_call_id");
}

/// A forced function is called whatever was said; `none` calls nothing; Mistral's `any` is a
/// required call (the sim stands in for the compatible family).
#[tokio::test]
async fn tool_choice_forces_or_forbids() {
    let s = sim().await;
    let ask = |choice: Value, words: &str| json!({"model": "m", "tools": tools(), "tool_choice": choice, "messages": [{"role": "user", "content": words}]});
    let name = |v: &Value| v["choices"][0]["message"]["tool_calls"][0]["function"]["name"].as_str().map(str::to_string);
    let forced = ask(json!({"type": "function", "function": {"name": "end_call"}}), "tell me a story");
    assert_eq!(name(&post(&s, &forced).await.json().await.unwrap()).as_deref(), Some("end_call"));
    let any: Value = post(&s, &ask(json!("any"), "tell me a story")).await.json().await.unwrap();
    assert_eq!(name(&any).as_deref(), Some("order_status"));
    let none: Value = post(&s, &ask(json!("none"), "end call")).await.json().await.unwrap();
    assert_eq!(none["choices"][0]["finish_reason"], "stop");
    assert!(none["choices"][0]["message"]["content"].as_str().is_some_and(|t| !t.is_empty()));
}
