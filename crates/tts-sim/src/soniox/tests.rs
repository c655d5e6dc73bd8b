//! The simulator seen by a raw WebSocket client, for what the adapter never does.

use super::*;
use crate::raw::{next_json as next, Client};
use crate::{SimKeys, Voicing};
use futures::SinkExt;
use serde_json::json;
use std::collections::HashMap;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "soniox-sim-raw-key";

async fn open() -> (SonioxSim, Client) {
    let sim = SonioxSim::start(
        SimKeys::from(vec![KEY.to_string()]),
        SonioxSimConfig {
            voicing: Voicing { first_audio_delay: Duration::from_millis(5), pace: 50.0, ..Voicing::default() },
            ..Default::default()
        }
        .into(),
    )
    .await
    .unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}tts-websocket", sim.base_url())).await.unwrap();
    (sim, ws)
}

fn config(id: &str, key: &str) -> Message {
    Message::text(
        json!({"api_key": key, "stream_id": id, "model": "tts-rt-v1", "language": "en", "voice": "Adrian",
            "audio_format": "pcm_s16le", "sample_rate": 16000, "return_timestamps": true})
        .to_string(),
    )
}

#[tokio::test]
async fn two_streams_multiplex_and_end_with_audio_end_then_terminated() {
    let (sim, mut ws) = open().await;
    ws.send(config("a", KEY)).await.unwrap();
    ws.send(config("b", KEY)).await.unwrap();
    ws.send(Message::text(r#"{"text":"Hi.","text_end":true,"stream_id":"a"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"text":"Yo.","text_end":true,"stream_id":"b"}"#)).await.unwrap();
    let mut chars: HashMap<String, String> = HashMap::new();
    let mut terminated = Vec::new();
    while terminated.len() < 2 {
        let m = next(&mut ws).await;
        let id = m["stream_id"].as_str().unwrap().to_string();
        if m["terminated"] == true {
            terminated.push(id);
            continue;
        }
        assert!(m["audio"].is_string());
        for c in m["timestamps"]["characters"].as_array().into_iter().flatten() {
            chars.entry(id.clone()).or_default().push_str(c.as_str().unwrap());
        }
        if m["audio_end"] == true {
            assert!(!terminated.contains(&id), "audio_end comes before terminated");
        }
    }
    assert_eq!(chars["a"], "Hi.");
    assert_eq!(chars["b"], "Yo.");
    assert_eq!(sim.received(), 6);
    assert_eq!(sim.service().streams_opened(), 2);
}

#[tokio::test]
async fn per_stream_errors_leave_the_socket_open() {
    let (sim, mut ws) = open().await;
    ws.send(config("bad", "nope")).await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        json!({"stream_id": "bad", "error_code": 401, "error_message": "Invalid API key."})
    );
    assert_eq!(next(&mut ws).await, json!({"terminated": true, "stream_id": "bad"}));

    ws.send(Message::text(json!({"api_key": KEY, "stream_id": "m", "language": "en"}).to_string())).await.unwrap();
    assert_eq!(next(&mut ws).await["error_message"], "Missing required field: model");
    assert_eq!(next(&mut ws).await["terminated"], true);

    ws.send(config("ok", KEY)).await.unwrap();
    ws.send(config("ok", KEY)).await.unwrap();
    assert_eq!(next(&mut ws).await["error_code"], 400, "duplicate config for a live stream");
    ws.send(Message::text(r#"{"keep_alive":true}"#)).await.unwrap();
    ws.send(Message::text(r#"{"stream_id":"ok","cancel":true}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await, json!({"terminated": true, "stream_id": "ok"}), "cancel sends only terminated");
    assert_eq!(sim.seen_keys(), ["nope", KEY, KEY]);
    assert_eq!(sim.open_connections(), 1);
}

#[tokio::test]
async fn unknown_path_is_404() {
    let (sim, _ws) = open().await;
    let err = tokio_tungstenite::connect_async(format!("{}v1/tts", sim.base_url())).await.err().unwrap();
    assert!(matches!(err, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 404));
}
