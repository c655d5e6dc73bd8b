//! The simulator against a plain WebSocket client: the wire as the spec describes it.

use super::*;
use crate::testdata::{self, TEXT_A};
use crate::wire_client::{http_error, read_texts, Client};
use crate::{Catalog, SimServer};
use bytes::BytesMut;
use futures::SinkExt;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const KEY: &str = "azure-sim-key";
const PATH: &str = "/speech/recognition/conversation/cognitiveservices/v1?language=en-US&format=detailed";

async fn start(cfg: SimConfig) -> SimServer<AzureSttSim> {
    crate::start(SimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

async fn open(
    sim: &SimServer<AzureSttSim>,
    path: &str,
    key: &str,
    connection_id: Option<&str>,
) -> Result<Client, tungstenite::Error> {
    let mut headers = vec![("Ocp-Apim-Subscription-Key", key)];
    headers.extend(connection_id.map(|id| ("X-ConnectionId", id)));
    crate::wire_client::open(&sim.base_url(), path, &headers).await
}

fn status(e: tungstenite::Error) -> u16 {
    http_error(e).0
}

async fn text(ws: &mut Client, path: &str, id: &str, body: &str) {
    let mut s = String::new();
    usp::write_text(&mut s, path, id, Some("application/json"), body);
    ws.send(Message::text(s)).await.unwrap();
}

async fn audio(ws: &mut Client, id: &str, content_type: Option<&str>, body: &[u8]) {
    let mut buf = BytesMut::new();
    usp::write_binary(&mut buf, "audio", id, content_type, None, body);
    ws.send(Message::binary(buf.freeze())).await.unwrap();
}

/// `(path, request id, body JSON)` of every message until `turn.end` or the server's close.
async fn read_all(ws: &mut Client) -> (Vec<(String, String, Value)>, Option<(u16, String)>) {
    let (texts, close) = read_texts(ws, |t| usp::parse_text(t).is_ok_and(|(h, _)| h.path == Some("turn.end"))).await;
    let msgs = texts
        .iter()
        .map(|t| {
            let (h, body) = usp::parse_text(t).unwrap();
            let v = if body.is_empty() { Value::Null } else { serde_json::from_str(body).unwrap() };
            (h.path.unwrap().to_string(), h.request_id.unwrap().to_string(), v)
        })
        .collect();
    (msgs, close)
}

#[tokio::test]
async fn refusals_look_like_azure() {
    let sim = start(SimConfig::default()).await;
    let id = usp::new_id();
    assert_eq!(status(open(&sim, PATH, "wrong", Some(&id)).await.err().unwrap()), 401);
    assert_eq!(status(open(&sim, PATH, KEY, None).await.err().unwrap()), 400);
    assert_eq!(status(open(&sim, PATH, KEY, Some("not-hex")).await.err().unwrap()), 400);
    let bad_mode = "/speech/recognition/shouting/cognitiveservices/v1";
    assert_eq!(status(open(&sim, bad_mode, KEY, Some(&id)).await.err().unwrap()), 404);
    assert_eq!(sim.connections(), 0);

    let http = reqwest::Client::new();
    let token_url = format!("http://{}/sts/v1.0/issueToken", sim.addr());
    let resp = http.post(&token_url).header("Ocp-Apim-Subscription-Key", "wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "401");
    let resp = http.post(&token_url).header("Ocp-Apim-Subscription-Key", KEY).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let token = resp.text().await.unwrap();
    // The issued token opens a stream as a bearer credential.
    let base = sim.base_url();
    let mut req = format!("{}{PATH}", base.as_str().trim_end_matches('/')).into_client_request().unwrap();
    req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
    req.headers_mut().insert("X-ConnectionId", id.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

#[tokio::test]
async fn a_turn_yields_start_hypotheses_phrase_end_in_order() {
    let dir = testdata::catalog_dir();
    let catalog = Arc::new(Catalog::from_dir(dir.path()).unwrap());
    let sim = start(SimConfig { catalog, final_delay: Duration::from_millis(50), ..Default::default() }).await;
    let mut ws = open(&sim, PATH, KEY, Some(&usp::new_id())).await.unwrap();
    let id = usp::new_id();
    text(&mut ws, "speech.config", &id, r#"{"context":{}}"#).await;
    text(&mut ws, "speech.context", &id, "{}").await;
    audio(&mut ws, &id, Some("audio/x-wav"), &usp::wav_header(usp::WAVE_PCM, 16000, 16)).await;
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.5));
    for frame in pcm.chunks(320) {
        audio(&mut ws, &id, None, &testdata::to_bytes(frame)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    audio(&mut ws, &id, None, &[]).await;
    let (msgs, close) = read_all(&mut ws).await;
    assert_eq!(close, None);
    assert!(msgs.iter().all(|(_, rid, _)| *rid == id));
    let mut paths: Vec<&str> = msgs.iter().map(|(p, _, _)| p.as_str()).collect();
    paths.dedup();
    assert_eq!(
        paths,
        ["turn.start", "speech.startDetected", "speech.hypothesis", "speech.phrase", "speech.endDetected", "turn.end"]
    );
    assert_eq!(msgs[1].2["Offset"], 5_000_000);
    let hyp = &msgs[2].2;
    assert!("hello what are your opening hours".starts_with(hyp["Text"].as_str().unwrap()), "{hyp}");
    let phrase = &msgs.iter().find(|(p, _, _)| p == "speech.phrase").unwrap().2;
    assert_eq!(phrase["RecognitionStatus"], "Success");
    assert_eq!(phrase["DisplayText"], TEXT_A);
    assert_eq!(phrase["NBest"][0]["Lexical"], "hello what are your opening hours");
    assert_eq!(phrase["Offset"], 5_000_000);
    assert_eq!(phrase["Duration"], 12_000_000);
    assert_eq!(msgs.iter().rev().nth(1).unwrap().2["Offset"], 17_000_000);
    assert_eq!(sim.received(), pcm.len() as u64 * 2);

    // A second turn needs a fresh request id; reusing the finished one is a protocol error.
    audio(&mut ws, &id, Some("audio/x-wav"), &usp::wav_header(usp::WAVE_PCM, 16000, 16)).await;
    let (_, close) = read_all(&mut ws).await;
    assert_eq!(close.map(|c| c.0), Some(1002));
}

#[tokio::test]
async fn the_first_audio_must_be_a_wav_header() {
    let sim = start(SimConfig::default()).await;
    let mut ws = open(&sim, PATH, KEY, Some(&usp::new_id())).await.unwrap();
    let id = usp::new_id();
    audio(&mut ws, &id, None, &[0u8; 640]).await;
    let (_, close) = read_all(&mut ws).await;
    assert_eq!(close.map(|c| c.0), Some(1007));

    let mut ws = open(&sim, PATH, KEY, Some(&usp::new_id())).await.unwrap();
    text(&mut ws, "speech.config", "", "{}").await;
    let (_, close) = read_all(&mut ws).await;
    assert_eq!(close, Some((1002, "Missing/Empty header. X-RequestId.".into())));
}

#[tokio::test]
async fn a_fault_closes_1011_on_the_v2_path() {
    let sim = start(SimConfig { fail_after_audio_ms: Some(500), ..Default::default() }).await;
    let mut ws = open(&sim, "/stt/speech/universal/v2", KEY, Some(&usp::new_id())).await.unwrap();
    let id = usp::new_id();
    audio(&mut ws, &id, Some("audio/x-wav"), &usp::wav_header(usp::WAVE_PCM, 8000, 16)).await;
    for frame in testdata::silence(1.0).chunks(160) {
        let mut b = BytesMut::new();
        usp::write_binary(&mut b, "audio", &id, None, None, &testdata::to_bytes(frame));
        if ws.send(Message::binary(b.freeze())).await.is_err() {
            break;
        }
    }
    let (msgs, close) = read_all(&mut ws).await;
    assert_eq!(msgs.first().map(|m| m.0.as_str()), Some("turn.start"));
    assert_eq!(close.map(|c| c.0), Some(1011));
}
