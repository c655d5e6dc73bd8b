//! The simulator against a plain WebSocket client: the wire as the spec describes it.

use super::*;
use crate::testdata::{self, TEXT_A};
use crate::wire_client::{read_json as read_all, Client};
use crate::{Catalog, SimConfig, SimServer};
use futures::SinkExt;
use serde_json::Value;
use std::time::Duration;

const KEY: &str = "aai-sim-key";
const QUERY: &str = "sample_rate=16000&encoding=pcm_s16le&speech_model=universal-streaming-english&format_turns=true";

async fn start(cfg: SimConfig) -> SimServer<AssemblyAiSim> {
    crate::start(SimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

async fn open(sim: &SimServer<AssemblyAiSim>, query: &str, key: &str) -> Client {
    crate::wire_client::open(&sim.base_url(), &format!("/v3/ws?{query}"), &[("authorization", key)]).await.unwrap()
}

#[tokio::test]
async fn a_bad_key_is_closed_1008_after_the_upgrade() {
    let sim = start(SimConfig::default()).await;
    let mut ws = open(&sim, QUERY, "nope").await;
    let (msgs, close) = read_all(&mut ws).await;
    assert!(msgs.is_empty());
    assert_eq!(close, Some((1008, "Unauthorized connection: Invalid API key".into())));
    assert!(sim.seen_keys().is_empty());
}

#[tokio::test]
async fn begin_turns_formatted_copy_termination() {
    let dir = testdata::catalog_dir();
    let catalog = Arc::new(Catalog::from_dir(dir.path()).unwrap());
    let sim = start(SimConfig { catalog, final_delay: Duration::from_millis(20), ..Default::default() }).await;
    let mut ws = open(&sim, QUERY, KEY).await;
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.0));
    for chunk in pcm.chunks(1600) {
        ws.send(Message::binary(testdata::to_bytes(chunk))).await.unwrap(); // 100 ms each
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    ws.send(Message::text(r#"{"type":"Terminate"}"#)).await.unwrap();
    let (msgs, close) = read_all(&mut ws).await;
    assert_eq!(msgs[0]["type"], "Begin");
    assert!(msgs[0]["expires_at"].as_u64().is_some());
    let turns: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "Turn").collect();
    let partial = turns.first().unwrap();
    assert_eq!(partial["end_of_turn"], false);
    assert_eq!(partial["words"].as_array().unwrap().last().unwrap()["word_is_final"], false);
    let [.., eot, formatted] = turns.as_slice() else { panic!("{turns:?}") };
    assert_eq!((eot["end_of_turn"].as_bool(), eot["turn_is_formatted"].as_bool()), (Some(true), Some(false)));
    assert_eq!(eot["transcript"], "hello what are your opening hours");
    assert_eq!(formatted["turn_is_formatted"], true);
    assert_eq!(formatted["transcript"], TEXT_A);
    assert_eq!(formatted["words"][0]["start"], 500);
    let term = msgs.last().unwrap();
    assert_eq!((term["type"].as_str(), term["audio_duration_seconds"].as_u64()), (Some("Termination"), Some(3)));
    assert_eq!(close, Some((1000, String::new())));
    assert_eq!(sim.seen_keys(), [KEY]);
}

#[tokio::test]
async fn chunks_outside_50_to_1000_ms_are_an_input_duration_violation() {
    let sim = start(SimConfig::default()).await;
    let mut ws = open(&sim, QUERY, KEY).await;
    ws.send(Message::binary(testdata::to_bytes(&testdata::silence(0.02)))).await.unwrap();
    let (msgs, close) = read_all(&mut ws).await;
    assert_eq!(msgs.last().unwrap()["error_code"], 3007);
    assert_eq!(close.map(|c| c.0), Some(3007));

    let mut ws = open(&sim, "sample_rate=16000", KEY).await;
    let (msgs, close) = read_all(&mut ws).await;
    assert_eq!((msgs.len(), close.map(|c| c.0)), (1, Some(3006)), "speech_model is required");
}
