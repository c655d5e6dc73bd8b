//! The simulator over real loopback HTTP, checked against the wire spec with a plain client.

use super::RETRY_DELAY;
use crate::testing::sse_events;
use crate::{reply_for, Api, Fault, LlmSim, SimConfig, SimKeys};
use serde_json::{json, Value};

const KEY: &str = "AIzaSySimTestKey0123456789abcdefghijk";

async fn sim() -> LlmSim {
    LlmSim::start(Api::Gemini, SimConfig::instant(SimKeys::from(&[KEY][..]))).await.unwrap()
}

fn body() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "what are your hours"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]}
    })
}

async fn post(s: &LlmSim, path_and_query: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(format!("{}v1beta/models/{path_and_query}", s.base_url())).json(&body());
    if let Some(key) = key {
        req = req.header("x-goog-api-key", key);
    }
    req.send().await.unwrap()
}

/// A request to the sim's `v1beta/{path}` with the test key.
async fn ask(s: &LlmSim, method: reqwest::Method, path: &str, body: Option<&Value>) -> reqwest::Response {
    let url = format!("{}v1beta/{path}", s.base_url());
    let mut req = reqwest::Client::new().request(method, url).header("x-goog-api-key", KEY);
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn bad_key_is_googles_400_api_key_invalid() {
    let s = sim().await;
    let bad = "AIzaSyWrongKey000000000000000000000000";
    let resp = post(&s, "gemini-2.5-flash:streamGenerateContent?alt=sse", Some(bad)).await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(bad));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], 400);
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(v["error"]["message"], "API key not valid. Please pass a valid API key.");
    assert_eq!(v["error"]["details"][0]["reason"], "API_KEY_INVALID");
    let resp = post(&s, "gemini-2.5-flash:streamGenerateContent?alt=sse", None).await;
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
    // The key may also come as `?key=`.
    let resp = post(&s, &format!("gemini-2.5-flash:generateContent?key={KEY}"), None).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn sse_stream_shape() {
    let s = sim().await;
    let resp = post(&s, "gemini-2.5-flash:streamGenerateContent?alt=sse", Some(KEY)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    let chunks: Vec<Value> = sse_events(&resp.bytes().await.unwrap())
        .into_iter()
        .map(|(_, data)| serde_json::from_str(&data).unwrap())
        .collect();
    let reply = reply_for("hours");
    let n = reply.split_whitespace().count();
    assert_eq!(chunks.len(), n, "one chunk per token, no [DONE]");
    let text: String = chunks
        .iter()
        .map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, reply);
    assert_eq!(chunks[0]["candidates"][0]["content"]["role"], "model");
    assert!(chunks[0]["candidates"][0].get("finishReason").is_none());
    let last = &chunks[n - 1];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["promptTokenCount"], (2 + 4) + (4 + 4));
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], n);
    assert_eq!(last["modelVersion"], "gemini-2.5-flash");
}

#[tokio::test]
async fn without_alt_sse_the_stream_is_one_json_array() {
    let s = sim().await;
    let v: Value = post(&s, "gemini-2.5-flash:streamGenerateContent", Some(KEY)).await.json().await.unwrap();
    let n = reply_for("hours").split_whitespace().count();
    assert_eq!(v.as_array().unwrap().len(), n);
}

#[tokio::test]
async fn faults_use_google_statuses() {
    let s = sim().await;
    s.set_fault(Some(Fault::Status(429)));
    let resp = post(&s, "m:streamGenerateContent?alt=sse", Some(KEY)).await;
    assert_eq!(resp.status(), 429);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(v["error"]["details"][0]["retryDelay"], RETRY_DELAY);
    s.set_fault(Some(Fault::Status(503)));
    let v: Value = post(&s, "m:streamGenerateContent?alt=sse", Some(KEY)).await.json().await.unwrap();
    assert_eq!(v["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn malformed_and_unknown_requests() {
    let s = sim().await;
    let empty = json!({"contents": []});
    let resp = ask(&s, reqwest::Method::POST, "models/m:streamGenerateContent?alt=sse", Some(&empty)).await;
    assert_eq!(resp.status(), 400);
    let resp = post(&s, "m:nonsense", Some(KEY)).await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn models_list_pages() {
    let s = sim().await;
    let v: Value = ask(&s, reqwest::Method::GET, "models?pageSize=1", None).await.json().await.unwrap();
    assert_eq!(v["models"][0]["name"], "models/gemini-2.5-flash");
    assert!(v["nextPageToken"].is_string());
}

/// Streams `contents` from `model` with two tools declared.
async fn with_tools(s: &LlmSim, model: &str, contents: Value) -> reqwest::Response {
    let body = json!({
        "contents": contents,
        "tools": [{"functionDeclarations": [
            {"name": "order_status", "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}},
            {"name": "end_call", "parameters": {"type": "object", "properties": {}}}
        ]}]
    });
    ask(s, reqwest::Method::POST, &format!("models/{model}:streamGenerateContent?alt=sse"), Some(&body)).await
}

async fn chunks(resp: reqwest::Response) -> Vec<Value> {
    sse_events(&resp.bytes().await.unwrap()).iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect()
}

/// Calls come whole in one chunk, without ids, the first with a thought signature, and
/// `finishReason: "STOP"`.
#[tokio::test]
async fn function_calls_come_whole_in_one_chunk() {
    let s = sim().await;
    let asks = json!([{"role": "user", "parts": [{"text": "what is the order status of 4217, then end call"}]}]);
    let resp = with_tools(&s, "gemini-2.5-flash", asks).await;
    assert_eq!(resp.status(), 200);
    let chunks = chunks(resp).await;
    assert_eq!(chunks.len(), 1);
    let candidate = &chunks[0]["candidates"][0];
    assert_eq!(
        candidate["content"]["parts"],
        json!([
            {"functionCall": {"name": "order_status", "args": {"order_id": "4217"}}, "thoughtSignature": super::SIM_SIGNATURE},
            {"functionCall": {"name": "end_call", "args": {}}}
        ])
    );
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(chunks[0]["usageMetadata"]["candidatesTokenCount"], 4 + 1);
    let again = s.last_request_body().unwrap();
    let whole = ask(&s, reqwest::Method::POST, "models/gemini-2.5-flash:generateContent", Some(&again)).await;
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(whole["candidates"], chunks[0]["candidates"], "generateContent answers the same calls");
}

#[tokio::test]
async fn function_responses_must_match_and_gemini_3_wants_signatures() {
    let s = sim().await;
    let turns = |signature: Option<&str>, answering: &str| {
        let mut call = json!({"functionCall": {"name": "order_status", "args": {"order_id": "4217"}}});
        if let Some(sig) = signature {
            call["thoughtSignature"] = json!(sig);
        }
        json!([
            {"role": "user", "parts": [{"text": "order status 4217"}]},
            {"role": "model", "parts": [call]},
            {"role": "user", "parts": [{"functionResponse": {"name": answering, "response": {"output": "shipped"}}}]}
        ])
    };
    let answered = chunks(with_tools(&s, "gemini-2.5-flash", turns(None, "order_status")).await).await;
    let text: String =
        answered.iter().map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(text, "I checked: shipped.");
    for (model, contents, message) in [
        ("gemini-2.5-flash", turns(None, "end_call"), "Please ensure that the number of function response parts"),
        ("gemini-3-pro-preview", turns(None, "order_status"), "Function call is missing a thought_signature"),
    ] {
        let resp = with_tools(&s, model, contents).await;
        assert_eq!(resp.status(), 400, "{model}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
        assert!(v["error"]["message"].as_str().unwrap().starts_with(message), "{v}");
    }
    let resp = with_tools(&s, "gemini-3-pro-preview", turns(Some("anything"), "order_status")).await;
    assert_eq!(resp.status(), 200);
}
