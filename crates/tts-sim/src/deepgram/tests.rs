//! The simulator seen by a raw client, for what the adapter never does.

use super::*;
use crate::raw::Client;
use crate::{SimKeys, Voicing};
use futures::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
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
            ..DeepgramTtsSimConfig::default()
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

async fn open_flux(sim: &DeepgramTtsSim, query: &str) -> Result<Client, tungstenite::Error> {
    let mut req = format!("{}v2/speak?{query}", sim.base_url()).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Token {KEY}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

fn refused_with(res: Result<Client, tungstenite::Error>, status: u16, message: &str) {
    match res {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), status);
            let body: serde_json::Value = serde_json::from_slice(&resp.body().clone().unwrap()).unwrap();
            assert_eq!(body["err_msg"], message);
        }
        other => panic!("expected {status}, got {:?}", other.map(|_| ())),
    }
}

/// Audio bytes received before the next text message, and that message.
async fn audio_then_json(ws: &mut Client) -> (usize, serde_json::Value) {
    let mut audio = 0;
    let json = next_json(ws, &mut audio).await;
    (audio, json)
}

#[tokio::test]
async fn flux_voices_text_as_it_comes_and_reports_each_turn() {
    let hold = Duration::from_millis(300);
    let cfg = DeepgramTtsSimConfig {
        voicing: Voicing { pace: 20.0, first_audio_delay: Duration::from_millis(5), ..Voicing::default() },
        flux_hold: hold,
        ..DeepgramTtsSimConfig::default()
    };
    let sim = DeepgramTtsSim::start(SimKeys::from(vec![KEY.to_string()]), cfg).await.unwrap();
    refused_with(open_flux(&sim, "model=aura-2-thalia-en").await, 400, "Aura models are served on /v1/speak.");
    refused_with(open_flux(&sim, "encoding=linear16").await, 400, "model is required on /v2/speak.");
    refused_with(open_flux(&sim, "model=flux-alexis").await, 400, "No such model/version combination found.");
    refused_with(
        open_flux(&sim, "model=flux-alexis-en&sample_rate=22050").await,
        400,
        "sample_rate must be 8000, 16000, 24000, 32000, 44100 or 48000 for linear16.",
    );

    let mut ws = open_flux(&sim, "model=flux-alexis-en&encoding=linear16&sample_rate=8000").await.unwrap();
    let (_, connected) = audio_then_json(&mut ws).await;
    assert_eq!(
        (connected["type"].as_str(), connected["model_name"].as_str()),
        (Some("Connected"), Some("flux-alexis-en"))
    );

    ws.send(Message::text(r#"{"type":"Flush"}"#)).await.unwrap();
    let (_, warn) = audio_then_json(&mut ws).await;
    assert_eq!((warn["type"].as_str(), warn["code"].as_str()), (Some("Warning"), Some("NO_ACTIVE_SPEECH")));

    // A clause is voiced at once, without a flush; its turn starts first.
    ws.send(Message::text(r#"{"type":"Speak","text":"Sure, "}"#)).await.unwrap();
    let (audio, started) = audio_then_json(&mut ws).await;
    assert_eq!((audio, started["type"].as_str()), (0, Some("SpeechStarted")));
    let id = started["speech_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("dg_sp_") && id.len() == 18, "{id}");
    let per_char = 50 * 8 * 2;
    let mut got = 0;
    while got < 6 * per_char {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await.expect("the clause, unflushed") {
            Some(Ok(Message::Binary(b))) => got += b.len(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, 6 * per_char);

    // Text with no boundary waits for one, then is voiced anyway.
    let sent = Instant::now();
    ws.send(Message::text(r#"{"type":"Speak","text":"we are "}"#)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(2), ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(_))) => assert!(sent.elapsed() >= hold, "voiced after {:?}", sent.elapsed()),
        other => panic!("{other:?}"),
    }

    // Flush: the rest, then the turn's report, then Flushed; a new Speak opens a new turn.
    ws.send(Message::text(r#"{"type":"Speak","text":"here\u0007"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"type":"Flush"}"#)).await.unwrap();
    let (_, meta) = audio_then_json(&mut ws).await;
    assert_eq!(meta["type"], "SpeechMetadata");
    assert_eq!(meta["speech_id"].as_str(), Some(id.as_str()));
    assert_eq!(
        (meta["input_character_count"].as_u64(), meta["billable_character_count"].as_u64()),
        (Some(18), Some(17))
    );
    assert_eq!(meta["audio_duration_ms"].as_u64(), Some(18 * 50));
    let (_, flushed) = audio_then_json(&mut ws).await;
    assert_eq!((flushed["type"].as_str(), flushed["speech_id"].as_str()), (Some("Flushed"), Some(id.as_str())));
    ws.send(Message::text(r#"{"type":"Speak","text":"Bye."}"#)).await.unwrap();
    let (_, next) = audio_then_json(&mut ws).await;
    assert_eq!(next["type"], "SpeechStarted");
    assert_ne!(next["speech_id"].as_str(), Some(id.as_str()));

    // Close ends the open turn, reports the session and closes normally.
    ws.send(Message::text(r#"{"type":"Close"}"#)).await.unwrap();
    let mut types = Vec::new();
    for _ in 0..3 {
        let (_, m) = audio_then_json(&mut ws).await;
        types.push(m["type"].as_str().unwrap().to_string());
        if m["type"] == "SessionMetadata" {
            assert_eq!(m["total_input_character_count"].as_u64(), Some(22));
        }
    }
    assert_eq!(types, ["SpeechMetadata", "Flushed", "SessionMetadata"]);
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1000),
        other => panic!("expected a close, got {other:?}"),
    }
    assert_eq!(sim.received(), 22);
}
