//! `POST /v1/responses` over real HTTP with a plain client, checked against E1's event sequence.

use crate::testing::sse_events;
use crate::{reply_for, Api, LlmSim, SimConfig, SimKeys};
use serde_json::{json, Value};

const KEY: &str = "sk-sim-responses-123456";

async fn sim() -> LlmSim {
    LlmSim::start(Api::OpenAi, SimConfig::instant(SimKeys::from(&[KEY][..]))).await.unwrap()
}

async fn post(sim: &LlmSim, key: &str, body: &Value) -> reqwest::Response {
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
    sse_events(&body)
        .into_iter()
        .map(|(name, data)| (name.unwrap_or_default(), serde_json::from_str(&data).unwrap()))
        .collect()
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

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Current weather", "strict": false,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}})
}

/// The caller names the tool: one `function_call` item, its arguments in deltas, then the
/// item's closing events and `response.completed` holding it.
#[tokio::test]
async fn function_call_stream_and_whole_response() {
    let s = sim().await;
    let body = json!({"model": "m", "stream": true, "input": "get weather paris", "tools": [weather_tool()]});
    let evs = events(post(&s, KEY, &body).await).await;
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    let deltas = names.iter().filter(|n| **n == "response.function_call_arguments.delta").count();
    let mut expected = vec!["response.created", "response.in_progress", "response.output_item.added"];
    expected.extend(std::iter::repeat_n("response.function_call_arguments.delta", deltas));
    expected.extend(["response.function_call_arguments.done", "response.output_item.done", "response.completed"]);
    assert_eq!(names, expected);
    for (i, (_, v)) in evs.iter().enumerate() {
        assert_eq!(v["sequence_number"], i);
    }
    let added = &evs[2].1["item"];
    assert_eq!(added["type"], "function_call");
    assert_eq!(
        (added["call_id"].as_str(), added["name"].as_str(), added["arguments"].as_str()),
        (Some("call_1"), Some("get_weather"), Some(""))
    );
    let args: String = evs
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, v)| {
            assert_eq!(v["item_id"], added["id"]);
            v["delta"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(args, r#"{"city":"paris"}"#);
    assert_eq!(evs[evs.len() - 3].1["arguments"], args.as_str());
    let done = &evs.last().unwrap().1["response"];
    assert_eq!(done["output"][0]["call_id"], "call_1");
    assert_eq!(done["output"][0]["arguments"], args.as_str());
    assert_eq!(done["tools"][0]["name"], "get_weather", "the request's tools are echoed");
    // Whole, and cut by max_output_tokens when it talks instead.
    let whole: Value =
        post(&s, KEY, &json!({"model": "m", "input": "bye", "max_output_tokens": 2})).await.json().await.unwrap();
    assert_eq!(whole["object"], "response");
    assert_eq!(whole["status"], "incomplete");
    assert_eq!(whole["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(whole["output"][0]["content"][0]["text"], "Goodbye, and");
}

/// Two named tools: two items at output indexes 0 and 1, one after the other; with
/// `parallel_tool_calls: false` only the first.
#[tokio::test]
async fn parallel_function_calls_are_separate_items() {
    let s = sim().await;
    let end_call = json!({"type": "function", "name": "end_call", "parameters": {"type": "object", "properties": {}}});
    let mut body = json!({"model": "m", "stream": true, "input": "get weather in Oslo, then end call", "tools": [weather_tool(), end_call]});
    let evs = events(post(&s, KEY, &body).await).await;
    let items: Vec<(u64, String, String)> = evs
        .iter()
        .filter(|(n, _)| n == "response.output_item.done")
        .map(|(_, v)| {
            (
                v["output_index"].as_u64().unwrap(),
                v["item"]["name"].as_str().unwrap().into(),
                v["item"]["call_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(items, [(0, "get_weather".into(), "call_1".into()), (1, "end_call".into(), "call_2".into())]);
    let first_done = evs.iter().position(|(n, _)| n == "response.output_item.done").unwrap();
    let second_added = evs.iter().rposition(|(n, _)| n == "response.output_item.added").unwrap();
    assert!(first_done < second_added, "the calls stream one after the other");
    assert_eq!(evs.last().unwrap().1["response"]["output"].as_array().unwrap().len(), 2);
    body["parallel_tool_calls"] = json!(false);
    body["stream"] = json!(false);
    let whole: Value = post(&s, KEY, &body).await.json().await.unwrap();
    assert_eq!(whole["parallel_tool_calls"], false);
    assert_eq!(whole["output"].as_array().unwrap().len(), 1);
}

/// The results go back as `function_call` + `function_call_output` items and are voiced; an
/// output answering no call is OpenAI's 400.
#[tokio::test]
async fn results_are_voiced_and_orphans_refused() {
    let s = sim().await;
    let input = json!([
        {"role": "user", "content": "get weather paris"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "{\"temp_c\":21}"}
    ]);
    let whole: Value =
        post(&s, KEY, &json!({"model": "m", "input": input, "tools": [weather_tool()]})).await.json().await.unwrap();
    assert_eq!(whole["output"][0]["content"][0]["text"], "I checked: temp c 21.");
    let calls = &s.last_request_messages()[1].tool_calls;
    assert_eq!(calls[0].id, "call_1", "the function_call joined an assistant turn");
    let mut orphan = input;
    orphan[2]["call_id"] = json!("call_7");
    let resp = post(&s, KEY, &json!({"model": "m", "input": orphan, "tools": [weather_tool()]})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "No tool call found for function call output with call_id call_7.");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "input");
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
