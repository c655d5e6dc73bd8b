//! The Azure simulator over real HTTP with a plain client, checked against Z3.

use super::BAD_KEY;
use crate::testing::sse_events;
use crate::{reply_for, Api, LlmSim, SimConfig, SimKeys};
use serde_json::{json, Value};

const KEY: &str = "0123456789abcdef0123456789abcdef";

async fn sim() -> LlmSim {
    LlmSim::start(Api::Azure, SimConfig::instant(SimKeys::from(&[KEY][..]))).await.unwrap()
}

async fn post(sim: &LlmSim, path: &str, key: &str, body: &Value) -> reqwest::Response {
    let url = format!("{}{path}", sim.base_url().as_str().trim_end_matches('/'));
    reqwest::Client::new().post(url).header("api-key", key).json(body).send().await.unwrap()
}

fn chat_body() -> Value {
    json!({
        "messages": [{"role": "user", "content": "what are your hours"}],
        "stream": true,
        "stream_options": {"include_usage": true}
    })
}

#[tokio::test]
async fn bad_key_gets_azures_401() {
    let s = sim().await;
    let bad = "ffffffffffffffffffffffffffff0000";
    let resp =
        post(&s, "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", bad, &chat_body()).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("apim-request-id"));
    let text = resp.text().await.unwrap();
    assert!(!text.contains(bad));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v, json!({"error": {"code": "401", "message": BAD_KEY}}));
    assert_eq!(s.seen_keys(), vec![bad.to_string()]);
}

#[tokio::test]
async fn classic_stream_has_azures_shape() {
    let s = sim().await;
    let resp =
        post(&s, "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", KEY, &chat_body()).await;
    assert_eq!(resp.status(), 200);
    let data: Vec<String> = sse_events(&resp.bytes().await.unwrap()).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    let first = &chunks[0];
    assert_eq!(first["choices"], json!([]), "prompt annotation first, with no choices");
    assert_eq!(first["prompt_filter_results"][0]["content_filter_results"]["jailbreak"]["detected"], false);
    assert_eq!(chunks[1]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[2]["model"], "gpt-4o-mini-2024-07-18", "the model version, not the deployment");
    assert_eq!(chunks[2]["choices"][0]["content_filter_results"]["hate"]["severity"], "safe");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, reply_for("hours"));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 8);
    assert_eq!(s.last_request_messages().len(), 1);
}

#[tokio::test]
async fn routes_and_versions() {
    let s = sim().await;
    let resp = post(&s, "/openai/deployments/gpt-4o-mini/chat/completions", KEY, &chat_body()).await;
    assert_eq!(resp.status(), 404, "a classic call needs an api-version");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "Resource not found");
    let resp = post(&s, "/openai/v1/chat/completions", KEY, &chat_body()).await;
    assert_eq!(resp.status(), 400, "v1 takes the deployment as model");
    let mut body = chat_body();
    body["model"] = json!("my-deployment");
    assert_eq!(post(&s, "/openai/v1/chat/completions", KEY, &body).await.status(), 200);
    let resp = post(&s, "/openai/v1/responses", KEY, &json!({"model": "gpt-4o-mini", "input": "hi"})).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], reply_for("hi"));
    let client = reqwest::Client::new();
    let base = s.base_url();
    for path in ["openai/models?api-version=2024-10-21", "openai/v1/models"] {
        let resp = client.get(format!("{base}{path}")).header("api-key", KEY).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["status"], "succeeded");
        let resp = client.get(format!("{base}{path}")).header("api-key", "nope").send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
}
