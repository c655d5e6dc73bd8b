//! The simulator against a plain WebSocket client: the wire as the spec describes it.

use super::*;
use crate::testdata::{self, TEXT_A};
use crate::wire_client::{read_json, Client};
use crate::{Catalog, SimConfig, SimServer};
use futures::{SinkExt, StreamExt};

const KEY: &str = "sx-sim-key";

async fn start(cfg: SimConfig) -> SimServer<SonioxSim> {
    crate::start(SimConfig { keys: vec![KEY.to_string()].into(), ..cfg }).await.unwrap()
}

async fn open(sim: &SimServer<SonioxSim>, bearer: Option<&str>) -> Client {
    let auth = bearer.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    crate::wire_client::open(&sim.base_url(), "/transcribe-websocket", &headers).await.unwrap()
}

fn config(api_key: Option<&str>) -> String {
    let mut v = json!({"model": "stt-rt-v5", "audio_format": "pcm_s16le", "sample_rate": 16000,
        "num_channels": 1, "enable_endpoint_detection": true});
    if let Some(k) = api_key {
        v["api_key"] = json!(k);
    }
    v.to_string()
}

async fn read_all(ws: &mut Client) -> (Vec<Value>, Option<u16>) {
    let (msgs, close) = read_json(ws).await;
    (msgs, close.map(|c| c.0))
}

fn text_of(tokens: &Value) -> String {
    tokens.as_array().unwrap().iter().map(|t| t["text"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_bad_key_in_the_config_or_header_is_an_in_band_401() {
    let sim = start(SimConfig::default()).await;
    for (bearer, api_key) in [(None, Some("nope")), (Some("nope"), None), (None, None)] {
        let mut ws = open(&sim, bearer).await;
        ws.send(Message::text(config(api_key))).await.unwrap();
        let (msgs, close) = read_all(&mut ws).await;
        assert_eq!(msgs.len(), 1);
        assert_eq!(
            (msgs[0]["error_code"].as_u64(), msgs[0]["error_type"].as_str()),
            (Some(401), Some("unauthenticated"))
        );
        assert_eq!(close, Some(1000));
    }
    let mut ws = open(&sim, Some(KEY)).await;
    ws.send(Message::text(r#"{"model":"whisper","audio_format":"pcm_s16le"}"#)).await.unwrap();
    let (msgs, _) = read_all(&mut ws).await;
    assert_eq!(msgs[0]["error_message"], "Invalid model specified.");
    assert!(sim.seen_keys().is_empty());
}

#[tokio::test]
async fn tokens_then_end_then_finished() {
    let dir = testdata::catalog_dir();
    let catalog = Arc::new(Catalog::from_dir(dir.path()).unwrap());
    let sim = start(SimConfig { catalog, final_delay: Duration::from_millis(20), ..Default::default() }).await;
    let mut ws = open(&sim, None).await;
    ws.send(Message::text(config(Some(KEY)))).await.unwrap(); // the deprecated config key still works
    let mut pcm = testdata::silence(0.5);
    pcm.extend(testdata::utterance_a());
    pcm.extend(testdata::silence(1.0));
    ws.send(Message::binary(testdata::to_bytes(&pcm))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    ws.send(Message::text("")).await.unwrap();
    let (msgs, close) = read_all(&mut ws).await;
    let non_final = msgs.iter().find(|m| m["tokens"][0]["is_final"] == false).unwrap();
    assert!(TEXT_A.starts_with(&text_of(&non_final["tokens"])));
    let fin = msgs.iter().find(|m| m["tokens"][0]["is_final"] == true).unwrap();
    let toks = fin["tokens"].as_array().unwrap();
    assert_eq!(toks.last().unwrap()["text"], "<end>");
    assert_eq!(text_of(&fin["tokens"]), format!("{TEXT_A}<end>"));
    assert_eq!(toks[1]["text"], " What");
    let last = msgs.last().unwrap();
    assert_eq!((last["finished"].as_bool(), last["total_audio_proc_ms"].as_u64()), (Some(true), Some(2700)));
    assert_eq!(close, Some(1000));
    assert_eq!(sim.seen_keys(), [KEY]);
}

#[tokio::test]
async fn finalize_is_answered_with_fin() {
    let sim = start(SimConfig::default()).await;
    let mut ws = open(&sim, Some(KEY)).await;
    ws.send(Message::text(config(None))).await.unwrap();
    ws.send(Message::text(r#"{"type":"finalize"}"#)).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(v["tokens"][0]["text"], "<fin>");
    ws.send(Message::text(r#"{"type":"nope"}"#)).await.unwrap();
    let (msgs, _) = read_all(&mut ws).await;
    assert_eq!(msgs[0]["error_code"], 400);
}
