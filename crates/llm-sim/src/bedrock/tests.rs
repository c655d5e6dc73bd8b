//! The Bedrock simulator over real HTTP, signing with the shared SigV4 code.

use crate::{reply_for, Api, LlmSim, SimConfig, SimKeys};
use aws::eventstream::MessageDecoder;
use aws::{AmzDate, Credentials, Signer};
use serde_json::{json, Value};

const KEY: &str = "AKIDSIMTEST00001:secretSimTest/abc+def0123456789";

async fn sim() -> LlmSim {
    LlmSim::start(Api::Bedrock, SimConfig::instant(SimKeys::from(&[KEY][..]))).await.unwrap()
}

/// POSTs `body` to the converse-stream route, signed with `key` (SigV4, `us-west-2`).
async fn converse(sim: &LlmSim, key: &str, body: &Value) -> reqwest::Response {
    let url = sim.base_url().join("model/amazon.nova-lite-v1%3A0/converse-stream").unwrap();
    let body = body.to_string().into_bytes();
    let signer = Signer::new(Credentials::parse(key).unwrap(), "us-west-2", "bedrock");
    let signed = signer.sign("POST", &url, &[("content-type", "application/json")], &body, AmzDate::now());
    let mut req = reqwest::Client::new().post(url).header("content-type", "application/json").body(body);
    for (name, value) in signed.pairs() {
        req = req.header(name, value);
    }
    req.send().await.unwrap()
}

fn hello() -> Value {
    json!({
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "what are your hours"}]}]
    })
}

#[tokio::test]
async fn stream_is_event_stream_frames_in_converse_order() {
    let s = sim().await;
    let resp = converse(&s, KEY, &hello()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/vnd.amazon.eventstream");
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let mut frames = MessageDecoder::new();
    frames.push(&resp.bytes().await.unwrap());
    let mut events = Vec::new();
    while let Some(m) = frames.next_message().unwrap() {
        assert_eq!(m.message_type(), Some("event"));
        assert_eq!(m.header_str(":content-type"), Some("application/json"));
        events.push((m.event_type().unwrap().to_string(), serde_json::from_slice::<Value>(&m.payload).unwrap()));
    }
    assert_eq!(frames.buffered(), 0);
    let reply = reply_for("hours");
    let n = reply.split_whitespace().count();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    let mut expected = vec!["messageStart"];
    expected.extend(std::iter::repeat_n("contentBlockDelta", n));
    expected.extend(["contentBlockStop", "messageStop", "metadata"]);
    assert_eq!(names, expected);
    let text: String = events[1..=n].iter().map(|(_, v)| v["delta"]["text"].as_str().unwrap()).collect();
    assert_eq!(text, reply);
    assert_eq!(events[n + 2].1, json!({"stopReason": "end_turn"}));
    // ("Be brief." 2 + 4) + ("what are your hours" 4 + 4)
    assert_eq!(events[n + 3].1["usage"], json!({"inputTokens": 14, "outputTokens": n, "totalTokens": 14 + n}));
}

#[tokio::test]
async fn bad_credentials_get_aws_403s() {
    let s = sim().await;
    for (key, code) in [
        ("AKIDUNKNOWN00001:secretSimTest/abc+def0123456789", "UnrecognizedClientException"),
        ("AKIDSIMTEST00001:wrongSecret", "InvalidSignatureException"),
    ] {
        let resp = converse(&s, key, &hello()).await;
        assert_eq!(resp.status(), 403, "{key}");
        let error_type = resp.headers()["x-amzn-errortype"].to_str().unwrap().to_string();
        assert!(error_type.starts_with(&format!("{code}:")), "{error_type}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["message"].as_str().is_some_and(|m| !m.contains("wrongSecret")), "{v}");
    }
    let unsigned = reqwest::Client::new().get(s.base_url().join("foundation-models").unwrap()).send().await.unwrap();
    assert_eq!(unsigned.status(), 403);
    assert!(unsigned.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .starts_with("MissingAuthenticationTokenException"));
    assert_eq!(s.seen_keys(), vec!["AKIDUNKNOWN00001".to_string(), "AKIDSIMTEST00001".to_string()]);
}

#[tokio::test]
async fn converse_validation() {
    let s = sim().await;
    let assistant_first = json!({"messages": [{"role": "assistant", "content": [{"text": "Hi"}]}]});
    let resp = converse(&s, KEY, &assistant_first).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers()["x-amzn-errortype"].to_str().unwrap().starts_with("ValidationException"));
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().starts_with("A conversation must start with a user message"));
    let repeated = json!({"messages": [
        {"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}
    ]});
    assert_eq!(converse(&s, KEY, &repeated).await.status(), 400);
}

fn tool_config() -> Value {
    json!({"tools": [
        {"toolSpec": {"name": "order_status", "inputSchema": {"json": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}},
        {"toolSpec": {"name": "end_call", "description": "Hang up", "inputSchema": {"json": {"type": "object"}}}}
    ]})
}

async fn events(resp: reqwest::Response) -> Vec<(String, Value)> {
    let mut frames = MessageDecoder::new();
    frames.push(&resp.bytes().await.unwrap());
    let mut events = Vec::new();
    while let Some(m) = frames.next_message().unwrap() {
        events.push((m.event_type().unwrap().to_string(), serde_json::from_slice::<Value>(&m.payload).unwrap()));
    }
    events
}

/// Each call is its own block: `contentBlockStart` with the `toolUse`, input fragments, stop;
/// then `stopReason: "tool_use"`.
#[tokio::test]
async fn tool_uses_stream_as_blocks() {
    let s = sim().await;
    let body = json!({
        "messages": [{"role": "user", "content": [{"text": "what is the order status of 4217, then end call"}]}],
        "toolConfig": tool_config()
    });
    let events = events(converse(&s, KEY, &body).await).await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names[..2], ["messageStart", "contentBlockStart"]);
    assert_eq!(names[names.len() - 3..], ["contentBlockStop", "messageStop", "metadata"]);
    assert_eq!(
        events[1].1,
        json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "call_1", "name": "order_status"}}})
    );
    let input = |index: u64| -> String {
        events
            .iter()
            .filter(|(e, v)| e == "contentBlockDelta" && v["contentBlockIndex"] == index)
            .map(|(_, v)| v["delta"]["toolUse"]["input"].as_str().unwrap())
            .collect()
    };
    assert_eq!(input(0), r#"{"order_id":"4217"}"#);
    assert_eq!(input(1), "{}");
    let stops = names.iter().filter(|n| **n == "contentBlockStop").count();
    assert_eq!(stops, 2);
    assert_eq!(events[events.len() - 2].1, json!({"stopReason": "tool_use"}));
}

#[tokio::test]
async fn tool_blocks_are_validated() {
    let s = sim().await;
    let turns = |answering: &str| {
        json!([
            {"role": "user", "content": [{"text": "order status 4217"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "call_1", "name": "order_status", "input": {"order_id": "4217"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": answering, "content": [{"json": {"status": "shipped"}}]}}]}
        ])
    };
    let ok = events(converse(&s, KEY, &json!({"messages": turns("call_1"), "toolConfig": tool_config()})).await).await;
    let text: String = ok.iter().filter_map(|(_, v)| v["delta"]["text"].as_str()).collect();
    assert_eq!(text, "I checked: status shipped.");
    for (body, message) in [
        (
            json!({"messages": turns("call_1")}),
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        ),
        (json!({"messages": turns("call_2"), "toolConfig": tool_config()}), "tool result for unknown call id 'call_2'"),
    ] {
        let resp = converse(&s, KEY, &body).await;
        assert_eq!(resp.status(), 400);
        assert!(resp.headers()["x-amzn-errortype"].to_str().unwrap().starts_with("ValidationException"));
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["message"], message);
    }
}
