//! The simulator against a plain WebSocket client: the wire as the spec describes it.

use super::*;
use crate::testdata::{self, TEXT_A};
use crate::wire_client::{http_error, read_json as read_all, Client};
use crate::{Catalog, SimConfig, SimServer};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, Message};

const KEY: &str = "sim-key";
const QUERY: &str = "model=nova-3&encoding=linear16&sample_rate=16000&channels=1&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true&punctuate=true";

async fn start(cfg: SimConfig) -> SimServer<DeepgramSim> {
    crate::start(SimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

async fn open(sim: &SimServer<DeepgramSim>, path_and_query: &str, key: &str) -> Result<Client, tungstenite::Error> {
    crate::wire_client::open(&sim.base_url(), path_and_query, &[("authorization", &format!("Token {key}"))]).await
}

#[tokio::test]
async fn upgrade_refusals_look_like_deepgram() {
    let sim = start(SimConfig::default()).await;
    let (status, body) = http_error(open(&sim, &format!("/v1/listen?{QUERY}"), "nope").await.err().unwrap());
    assert_eq!(status, 401);
    assert_eq!(body["err_code"], "INVALID_AUTH");
    assert_eq!(body["err_msg"], "Invalid credentials.");
    assert_eq!(body["request_id"].as_str().map(str::len), Some(36));
    let (status, _) = http_error(open(&sim, &format!("/v3/listen?{QUERY}"), KEY).await.err().unwrap());
    assert_eq!(status, 404);
    // `/v2/listen` is Flux: a nova model there is a bad request, a bad key still a 401.
    let (status, _) = http_error(open(&sim, &format!("/v2/listen?{QUERY}"), KEY).await.err().unwrap());
    assert_eq!(status, 400);
    let (status, _) = http_error(open(&sim, "/v2/listen?model=flux-general-en", "nope").await.err().unwrap());
    assert_eq!(status, 401);
    let (status, body) = http_error(open(&sim, "/v1/listen?sample_rate=16000", KEY).await.err().unwrap());
    assert_eq!((status, body["err_code"].as_str()), (400, Some("Bad Request")));
    let (status, _) = http_error(open(&sim, "/v1/listen?encoding=linear16", KEY).await.err().unwrap());
    assert_eq!(status, 400);
    let (status, _) = http_error(open(&sim, "/v1/listen?encoding=mulaw&sample_rate=8000", KEY).await.err().unwrap());
    assert_eq!(status, 400);
    assert_eq!(sim.connections(), 0);
}

#[tokio::test]
async fn a_stream_yields_results_in_order_then_metadata_and_a_normal_close() {
    let dir = testdata::catalog_dir();
    let catalog = Arc::new(Catalog::from_dir(dir.path()).unwrap());
    let final_delay = Duration::from_millis(250);
    let sim = start(SimConfig { catalog, final_delay, ..Default::default() }).await;
    let mut ws = open(&sim, &format!("/v1/listen?{QUERY}"), KEY).await.unwrap();
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.5));
    let sent_at = tokio::time::Instant::now();
    for frame in pcm.chunks(320) {
        ws.send(Message::binary(testdata::to_bytes(frame))).await.unwrap();
    }
    // Wait for the endpointed final before closing, so it is not flushed early.
    let fin = loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["is_final"] == true {
            break v;
        }
    };
    assert!(sent_at.elapsed() >= final_delay);
    assert_eq!(fin["speech_final"], true);
    assert_eq!(fin["from_finalize"], false);
    assert_eq!(fin["channel_index"], serde_json::json!([0, 1]));
    let alt = &fin["channel"]["alternatives"][0];
    assert_eq!(alt["transcript"], TEXT_A);
    assert_eq!(alt["words"][0]["word"], "hello");
    assert_eq!(alt["words"][0]["punctuated_word"], "Hello.");
    assert_eq!(alt["words"][0]["start"], 0.5);
    assert_eq!(alt["words"][5]["end"], 1.7);
    assert!(fin["metadata"]["request_id"].is_string());

    ws.send(Message::text(r#"{"type":"KeepAlive"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"type":"CloseStream"}"#)).await.unwrap();
    let (msgs, close) = read_all(&mut ws).await;
    let kinds: Vec<&str> = msgs.iter().filter_map(|m| m["type"].as_str()).collect();
    assert_eq!(kinds, ["UtteranceEnd", "Metadata"]);
    assert_eq!(msgs[0]["last_word_end"], 1.7);
    assert_eq!(msgs[1]["duration"], 3.2);
    assert_eq!(msgs[1]["channels"], 1);
    assert_eq!(close, Some((1000, String::new())));
    assert_eq!(sim.received(), pcm.len() as u64 * 2);
}

#[tokio::test]
async fn speech_started_and_interims_precede_the_final() {
    let sim = start(SimConfig { final_delay: Duration::from_millis(50), ..Default::default() }).await;
    let mut ws = open(&sim, &format!("/v1/listen?{QUERY}"), KEY).await.unwrap();
    let mut pcm = testdata::silence(0.2);
    pcm.extend(testdata::utterance_b());
    pcm.extend(testdata::silence(0.4));
    ws.send(Message::binary(testdata::to_bytes(&pcm))).await.unwrap(); // one big frame is fine too
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.send(Message::text(r#"{"type":"CloseStream"}"#)).await.unwrap();
    let (msgs, _) = read_all(&mut ws).await;
    let kinds: Vec<String> = msgs
        .iter()
        .map(|m| format!("{}{}", m["type"].as_str().unwrap(), if m["is_final"] == true { "/final" } else { "" }))
        .collect();
    // 2.0 s of speech + 0.3 s hangover = five 400 ms interims.
    assert_eq!(
        kinds,
        ["SpeechStarted", "Results", "Results", "Results", "Results", "Results", "Results/final", "Metadata"]
    );
    assert_eq!(msgs[0]["timestamp"], 0.2);
    assert_eq!(msgs[6]["channel"]["alternatives"][0]["transcript"], "[speech 2.0 s]");
}

#[tokio::test]
async fn finalize_marks_from_finalize_and_bad_text_closes_1008() {
    let sim = start(SimConfig::default()).await;
    let mut ws = open(&sim, &format!("/v1/listen?{QUERY}"), KEY).await.unwrap();
    let mut pcm = testdata::silence(0.2);
    pcm.extend(testdata::utterance_a());
    ws.send(Message::binary(testdata::to_bytes(&pcm))).await.unwrap();
    ws.send(Message::text(r#"{"type":"Finalize"}"#)).await.unwrap();
    ws.send(Message::text("hello?")).await.unwrap();
    let (msgs, close) = read_all(&mut ws).await;
    let fin = msgs.iter().find(|m| m["is_final"] == true).unwrap();
    assert_eq!((fin["from_finalize"].as_bool(), fin["speech_final"].as_bool()), (Some(true), Some(false)));
    assert_eq!(fin["channel"]["alternatives"][0]["transcript"], "[speech 1.2 s]");
    assert_eq!(close, Some((1008, "DATA-0000".into())));
}
