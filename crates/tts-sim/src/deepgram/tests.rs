//! The simulator seen by a raw client, for what the adapter never does.

use super::*;
use crate::raw::Client;
use crate::{SimKeys, Voicing};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const KEY: &str = "dg-raw";

async fn open(sim: &DeepgramTtsSim, query: &str, key: &str) -> Result<Client, tungstenite::Error> {
    let mut req = format!("{}v1/speak?{query}", sim.base_url()).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Token {key}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

/// Next text message, counting binary frames skipped on the way.
async fn next_json(ws: &mut Client, audio: &mut usize) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Binary(b))) => *audio += b.len(),
            Some(Ok(_)) => {}
            other => panic!("stream ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn refusals_metadata_clear_and_the_flush_limit() {
    let sim = DeepgramTtsSim::start(
        SimKeys::from(vec![KEY.to_string()]),
        DeepgramTtsSimConfig {
            voicing: Voicing { pace: 1.0, first_audio_delay: Duration::from_millis(5), ..Voicing::default() },
            flushes_per_minute: 2,
        },
    )
    .await
    .unwrap();
    match open(&sim, "model=aura-2-thalia-en", "bad").await {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401);
            let body: serde_json::Value = serde_json::from_slice(&resp.body().clone().unwrap()).unwrap();
            assert_eq!(body["err_code"], "INVALID_AUTH");
            assert_eq!(body["err_msg"], "Invalid credentials.");
        }
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    assert!(open(&sim, "model=aura-2-thalia-en&sample_rate=22050", KEY).await.is_err());

    let mut ws = open(&sim, "model=aura-2-thalia-en&encoding=linear16&sample_rate=8000", KEY).await.unwrap();
    let mut audio = 0;
    let meta = next_json(&mut ws, &mut audio).await;
    assert_eq!((meta["type"].as_str(), meta["model_name"].as_str()), (Some("Metadata"), Some("aura-2-thalia-en")));

    // A long text at real-time pace, cleared after its first audio: Cleared, nothing after.
    ws.send(Message::text(r#"{"type":"Speak","text":"A rather long sentence to be cut off."}"#)).await.unwrap();
    ws.send(Message::text(r#"{"type":"Flush"}"#)).await.unwrap();
    while audio == 0 {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => audio += b.len(),
            other => panic!("{other:?}"),
        }
    }
    ws.send(Message::text(r#"{"type":"Clear"}"#)).await.unwrap();
    let cleared = next_json(&mut ws, &mut audio).await;
    assert_eq!((cleared["type"].as_str(), cleared["sequence_id"].as_u64()), (Some("Cleared"), Some(1)));
    assert!(audio < 37 * 50 * 8 * 2, "the rest was dropped");

    ws.send(Message::text(r#"{"type":"Flush"}"#)).await.unwrap();
    assert_eq!(next_json(&mut ws, &mut audio).await["type"], "Flushed");
    ws.send(Message::text(r#"{"type":"Flush"}"#)).await.unwrap();
    let warn = next_json(&mut ws, &mut audio).await;
    assert_eq!((warn["type"].as_str(), warn["code"].as_str()), (Some("Warning"), Some("FLUSH_LIMIT_EXCEEDED")));

    ws.send(Message::text(r#"{"type":"Close"}"#)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1000),
        other => panic!("expected a close, got {other:?}"),
    }
    assert_eq!(sim.received(), 37);
}
