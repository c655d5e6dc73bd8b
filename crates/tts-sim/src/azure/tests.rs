//! The simulator against a plain WebSocket client: the wire as the spec describes it.

use super::*;
use crate::raw::Client;
use crate::{SimKeys, Voicing};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};
use tts::wire::azure as wire;

const KEY: &str = "azure-sim-key";

async fn start(cfg: AzureTtsSimConfig) -> AzureTtsSim {
    AzureTtsSim::start(SimKeys::from(vec![KEY.to_string()]), cfg.into()).await.unwrap()
}

async fn open(sim: &AzureTtsSim, path: &str, key: &str, with_id: bool) -> Result<Client, tungstenite::Error> {
    let base = sim.base_url();
    let mut req = format!("{}{path}", base.as_str().trim_end_matches('/')).into_client_request().unwrap();
    req.headers_mut().insert("Ocp-Apim-Subscription-Key", key.parse().unwrap());
    if with_id {
        req.headers_mut().insert("X-ConnectionId", usp::new_id().parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

async fn send(ws: &mut Client, path: &str, id: &str, ct: &str, body: &str) {
    let mut s = String::new();
    usp::write_text(&mut s, path, id, Some(ct), body);
    ws.send(Message::text(s)).await.unwrap();
}

/// Messages as `(path, body)` until turn.end or close; binary audio as `("audio", byte count)`.
async fn read_turn(ws: &mut Client) -> (Vec<(String, Value)>, Option<u16>) {
    let mut msgs = Vec::new();
    let read = async {
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Text(t) => {
                    let (h, body) = usp::parse_text(&t).unwrap();
                    let v = serde_json::from_str(body).unwrap_or(Value::Null);
                    msgs.push((h.path.unwrap().to_string(), v));
                    if h.path == Some("turn.end") {
                        return None;
                    }
                }
                Message::Binary(b) => {
                    let (h, body) = usp::parse_binary(&b).unwrap();
                    assert_eq!(h.path, Some("audio"));
                    msgs.push((format!("audio/{}", h.stream_id.unwrap()), Value::from(body.len())));
                }
                Message::Close(f) => return f.map(|f| u16::from(f.code)),
                _ => {}
            }
        }
        None
    };
    let close = tokio::time::timeout(Duration::from_secs(10), read).await.expect("no turn.end");
    (msgs, close)
}

#[tokio::test]
async fn refusals_look_like_azure() {
    let sim = start(AzureTtsSimConfig::default()).await;
    let err = open(&sim, "/cognitiveservices/websocket/v1", "nope", true).await.err().unwrap();
    assert!(matches!(err, tungstenite::Error::Http(ref r) if r.status() == 401));
    let err = open(&sim, "/cognitiveservices/websocket/v1", KEY, false).await.err().unwrap();
    assert!(matches!(err, tungstenite::Error::Http(ref r) if r.status() == 400));
    let url = format!("http://{}/cognitiveservices/voices/list", sim.addr());
    let http = reqwest::Client::new();
    let resp = http.get(&url).header("Ocp-Apim-Subscription-Key", "nope").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "401");
    let resp = http.get(&url).header("Ocp-Apim-Subscription-Key", KEY).send().await.unwrap();
    let voices: Value = resp.json().await.unwrap();
    assert_eq!(voices[0]["ShortName"], "en-US-AvaMultilingualNeural");
    assert_eq!(voices[0]["Locale"], "en-US");
}

#[tokio::test]
async fn a_request_is_answered_in_the_sdk_order() {
    let sim = start(AzureTtsSimConfig {
        voicing: Voicing {
            pace: 20.0,
            first_audio_delay: Duration::from_millis(10),
            ..AzureTtsSimConfig::default().voicing
        },
    })
    .await;
    let mut ws = open(&sim, "/cognitiveservices/websocket/v1", KEY, true).await.unwrap();
    let id = usp::new_id();
    send(&mut ws, "speech.config", &id, "application/json", &wire::speech_config()).await;
    send(&mut ws, "synthesis.context", &id, "application/json", &wire::synthesis_context("raw-8khz-16bit-mono-pcm"))
        .await;
    send(&mut ws, "ssml", &id, "application/ssml+xml", &wire::ssml("en-GB-SoniaNeural", "Good morning!")).await;
    let (msgs, close) = read_turn(&mut ws).await;
    assert_eq!(close, None);
    let stream = msgs[1].1["audio"]["streamId"].as_str().unwrap().to_string();
    let paths: Vec<&str> = msgs.iter().map(|(p, _)| p.as_str()).collect();
    let audio_path = format!("audio/{stream}");
    assert_eq!(paths.first(), Some(&"turn.start"));
    assert_eq!(paths.get(1), Some(&"response"));
    assert!(paths[2..paths.len() - 2].iter().all(|p| *p == audio_path), "{paths:?}");
    assert_eq!(&paths[paths.len() - 2..], ["audio.metadata", "turn.end"]);
    let bytes: u64 = msgs.iter().filter(|(p, _)| *p == audio_path).map(|(_, n)| n.as_u64().unwrap()).sum();
    assert_eq!(bytes, 13 * 50 * 8 * 2, "13 characters × 50 ms at 8 kHz, 16-bit");
    assert_eq!(msgs[msgs.len() - 2].1["Metadata"][0]["Type"], "SessionEnd");
    assert_eq!(msgs[msgs.len() - 2].1["Metadata"][0]["Data"]["Offset"], 13 * 50 * 10_000);
    assert_eq!(sim.service().voices_requested(), ["en-GB-SoniaNeural"]);
    assert_eq!(sim.received(), 13);
}

#[tokio::test]
async fn bad_messages_close_like_the_service() {
    let sim = start(AzureTtsSimConfig::default()).await;
    let mut ws = open(&sim, "/tts/cognitiveservices/websocket/v1", KEY, true).await.unwrap();
    let id = usp::new_id();
    send(
        &mut ws,
        "synthesis.context",
        &id,
        "application/json",
        &wire::synthesis_context("audio-24khz-48kbitrate-mono-mp3"),
    )
    .await;
    assert_eq!(read_turn(&mut ws).await.1, Some(1007));

    let mut ws = open(&sim, "/tts/cognitiveservices/websocket/v1", KEY, true).await.unwrap();
    send(&mut ws, "ssml", &id, "application/ssml+xml", "<speak><voice>no name</voice></speak>").await;
    assert_eq!(read_turn(&mut ws).await.1, Some(1007));

    let mut ws = open(&sim, "/tts/cognitiveservices/websocket/v1", KEY, true).await.unwrap();
    send(&mut ws, "ssml", "with-dashes-0000", "application/ssml+xml", &wire::ssml("v", "hi")).await;
    assert_eq!(read_turn(&mut ws).await.1, Some(1002));
}
