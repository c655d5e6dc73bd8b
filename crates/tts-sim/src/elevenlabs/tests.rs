//! The simulator seen by a raw WebSocket client, for what the adapter never does.

use super::*;
use crate::raw::Client;
use crate::{SimKeys, Voicing};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const KEY: &str = "sk-sim-raw-key";

async fn sim(cfg: ElevenLabsSimConfig) -> ElevenLabsSim {
    ElevenLabsSim::start(SimKeys::from(vec![KEY.to_string()]), cfg.into()).await.unwrap()
}

fn url(sim: &ElevenLabsSim, path_and_query: &str) -> String {
    format!("{}{path_and_query}", sim.base_url().as_str().trim_end_matches('/'))
}

const PATH: &str = "/v1/text-to-speech/v1/stream-input?model_id=m&output_format=pcm_16000";

/// Next text frame, or the close code when the server ends the stream.
async fn next(ws: &mut Client) -> Result<serde_json::Value, Option<u16>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(f))) => return Err(f.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return Err(None),
        }
    }
}

#[tokio::test]
async fn key_in_first_message_only() {
    let sim = sim(ElevenLabsSimConfig::default()).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(url(&sim, PATH)).await.unwrap();
    ws.send(Message::text(r#"{"text":" ","xi-api-key":"sk-nope"}"#)).await.unwrap();
    let err = next(&mut ws).await.unwrap();
    assert_eq!(err["error"], "invalid_api_key");
    assert_eq!(err["code"], 1008);
    assert!(!err.to_string().contains("sk-nope"));
    assert_eq!(next(&mut ws).await, Err(Some(1008)));

    let (mut ws, _) = tokio_tungstenite::connect_async(url(&sim, PATH)).await.unwrap();
    ws.send(Message::text(format!(r#"{{"text":" ","xi_api_key":"{KEY}"}}"#))).await.unwrap();
    ws.send(Message::text(r#"{"text":"Hi. ","flush":true}"#)).await.unwrap();
    ws.send(Message::text(r#"{"text":""}"#)).await.unwrap();
    let audio = next(&mut ws).await.unwrap();
    assert_eq!(audio["alignment"]["chars"], serde_json::json!(["H", "i", "."]));
    assert_eq!(audio["alignment"]["charStartTimesMs"], serde_json::json!([0, 50, 100]));
    assert_eq!(audio["normalizedAlignment"], audio["alignment"]);
    assert_eq!(next(&mut ws).await.unwrap()["isFinal"], true);
    assert_eq!(next(&mut ws).await, Err(Some(1000)));
    assert_eq!(sim.seen_keys(), ["sk-nope", KEY]);
    assert_eq!(sim.received(), 4);
}

#[tokio::test]
async fn handshake_rejections_look_like_the_provider() {
    let sim = sim(ElevenLabsSimConfig::default()).await;
    let status = |r: Result<_, tungstenite::Error>| match r {
        Err(tungstenite::Error::Http(resp)) => {
            let body = String::from_utf8(resp.body().clone().unwrap_or_default()).unwrap();
            (resp.status().as_u16(), body)
        }
        other => panic!("expected an HTTP rejection, got {:?}", other.map(|_| ())),
    };
    let mut req = url(&sim, PATH).into_client_request().unwrap();
    req.headers_mut().insert("xi-api-key", "sk-bad".parse().unwrap());
    let (code, body) = status(tokio_tungstenite::connect_async(req).await);
    assert_eq!(code, 401);
    assert_eq!(body, r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#);

    let (code, _) = status(tokio_tungstenite::connect_async(url(&sim, "/v1/text-to-speech/v1/other-input")).await);
    assert_eq!(code, 404);
    let (code, body) =
        status(tokio_tungstenite::connect_async(url(&sim, "/v1/text-to-speech/v1/stream-input?model_id=m")).await);
    assert_eq!(code, 422, "{body}");
    assert_eq!(sim.connections(), 0);
}

#[tokio::test]
async fn idle_stream_is_closed_and_first_audio_waits_for_the_delay() {
    let delay = Duration::from_millis(120);
    let sim = sim(ElevenLabsSimConfig {
        voicing: Voicing { first_audio_delay: delay, ..Voicing::default() },
        ..Default::default()
    })
    .await;
    let mut req = url(&sim, &format!("{PATH}&inactivity_timeout=1&auto_mode=true")).into_client_request().unwrap();
    req.headers_mut().insert("xi-api-key", KEY.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(r#"{"text":" "}"#)).await.unwrap();
    let sent = tokio::time::Instant::now();
    ws.send(Message::text(r#"{"text":"Okay. ","try_trigger_generation":true}"#)).await.unwrap();
    let audio = next(&mut ws).await.unwrap();
    assert!(sent.elapsed() >= delay, "first audio after {:?}", sent.elapsed());
    assert_eq!(audio["alignment"]["chars"].as_array().map(Vec::len), Some(4), "auto_mode generated without a flush");
    let _ = next(&mut ws).await.unwrap(); // the rest of "Okay."
    let idle = tokio::time::Instant::now();
    assert_eq!(next(&mut ws).await, Err(Some(1008)));
    assert!(idle.elapsed() >= Duration::from_millis(800));
    assert_eq!(sim.received(), 6);
}

#[tokio::test]
async fn dropping_the_simulator_closes_its_streams() {
    let sim = sim(ElevenLabsSimConfig::default()).await;
    let mut req = url(&sim, PATH).into_client_request().unwrap();
    req.headers_mut().insert("xi-api-key", KEY.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(r#"{"text":" "}"#)).await.unwrap();
    let base = sim.base_url();
    drop(sim);
    assert_eq!(next(&mut ws).await, Err(Some(1001)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio_tungstenite::connect_async(format!("{base}{}", PATH.trim_start_matches('/'))).await.is_err());
}

#[tokio::test]
async fn multi_context_socket_serves_contexts_independently() {
    let sim = sim(ElevenLabsSimConfig {
        voicing: Voicing { pace: 50.0, first_audio_delay: Duration::from_millis(5), ..Voicing::default() },
        ..Default::default()
    })
    .await;
    let path = "/v1/text-to-speech/v1/multi-stream-input?model_id=m&output_format=pcm_16000";
    let (mut ws, _) = tokio_tungstenite::connect_async(url(&sim, path)).await.unwrap();
    // The generated multi-context type spells the key with an underscore.
    ws.send(Message::text(format!(r#"{{"text":" ","context_id":"a","xi_api_key":"{KEY}"}}"#))).await.unwrap();
    ws.send(Message::text(r#"{"text":" ","context_id":"b"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"text":"Hi. ","context_id":"a"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"text":"Yo. ","context_id":"b","flush":true}"#)).await.unwrap();
    ws.send(Message::text(r#"{"context_id":"a","text":"","flush":true}"#)).await.unwrap();
    ws.send(Message::text(r#"{"context_id":"a","close_context":true}"#)).await.unwrap();
    let mut a = String::new();
    let mut b = String::new();
    loop {
        let m = next(&mut ws).await.unwrap();
        if m["isFinal"] == true {
            assert_eq!(m["contextId"], "a", "only the closed context is final");
            break;
        }
        let chars: String = m["alignment"]["chars"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        match m["contextId"].as_str() {
            Some("a") => a.push_str(&chars),
            Some("b") => b.push_str(&chars),
            other => panic!("audio without a known contextId: {other:?}"),
        }
    }
    assert_eq!(a, "Hi.");
    ws.send(Message::text(r#"{"close_socket":true}"#)).await.unwrap();
    loop {
        match next(&mut ws).await {
            Ok(m) if m["isFinal"] == true => assert_eq!(m["contextId"], "b"),
            Ok(m) => b.push_str(
                &m["alignment"]["chars"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect::<String>(),
            ),
            Err(code) => {
                assert_eq!(code, Some(1000));
                break;
            }
        }
    }
    assert_eq!(b, "Yo.");
    assert_eq!(sim.service().contexts_closed(), 1);
    assert_eq!(sim.seen_keys(), [KEY]);
}

/// The audio of `text` on a fresh stream asking for `format`, decoded from base64.
async fn audio_of(sim: &ElevenLabsSim, format: &str, text: &str) -> Vec<u8> {
    use base64::Engine;
    let path = format!("/v1/text-to-speech/v1/stream-input?model_id=m&output_format={format}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url(sim, &path)).await.unwrap();
    ws.send(Message::text(format!(r#"{{"text":" ","xi_api_key":"{KEY}"}}"#))).await.unwrap();
    ws.send(Message::text(format!(r#"{{"text":"{text}","flush":true}}"#))).await.unwrap();
    ws.send(Message::text(r#"{"text":""}"#)).await.unwrap();
    let mut audio = Vec::new();
    while let Ok(msg) = next(&mut ws).await {
        if let Some(b64) = msg["audio"].as_str() {
            audio.extend(base64::engine::general_purpose::STANDARD.decode(b64).unwrap());
        }
    }
    audio
}

#[tokio::test]
async fn ulaw_8000_is_the_pcm_8000_audio_in_mu_law() {
    let sim = sim(ElevenLabsSimConfig::default()).await;
    let pcm = audio_of(&sim, "pcm_8000", "Hi there. ").await;
    let ulaw = audio_of(&sim, "ulaw_8000", "Hi there. ").await;
    let samples: Vec<i16> = pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    assert!(!samples.is_empty());
    let mut expected = Vec::new();
    media::g711::encode_ulaw_into(&samples, &mut expected);
    assert_eq!(ulaw, expected, "one µ-law byte per 8 kHz sample");
}
