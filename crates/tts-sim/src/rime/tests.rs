//! The simulator seen by a raw client, for what the adapter never does.

use super::*;
use crate::{SimKeys, Voicing};
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const KEY: &str = "rime-raw";

#[tokio::test]
async fn chunks_split_samples_timestamps_restart_and_eos_closes() {
    let sim = RimeSim::start(
        SimKeys::from(vec![KEY.to_string()]),
        RimeSimConfig {
            voicing: Voicing { pace: 50.0, first_audio_delay: Duration::from_millis(5), ..Voicing::default() },
        },
    )
    .await
    .unwrap();
    let url =
        format!("{}ws3?speaker=cove&modelId=mistv3&audioFormat=pcm&samplingRate=16000&segment=never", sim.base_url());
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    // segment=never: nothing until the flush.
    ws.send(Message::text(r#"{"text":"One. Two","contextId":"c"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"operation":"flush","contextId":"c"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"text":"Three","contextId":"c"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"operation":"eos"}"#)).await.unwrap();
    let (mut bytes, mut odd, mut starts, mut done) = (0usize, 0, Vec::new(), 0);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => {
                let m: serde_json::Value = serde_json::from_str(&t).unwrap();
                match m["type"].as_str() {
                    Some("chunk") => {
                        let n = base64::engine::general_purpose::STANDARD
                            .decode(m["data"].as_str().unwrap())
                            .unwrap()
                            .len();
                        bytes += n;
                        odd += n % 2;
                    }
                    Some("timestamps") => starts.push(m["word_timestamps"]["start"][0].as_f64().unwrap()),
                    Some("done") => {
                        assert_eq!(m["contextId"], "c");
                        done += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            Some(Ok(Message::Close(f))) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(1000));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(bytes, (8 + 5) * 50 * 16 * 2, "\"One. Two\" and \"Three\" voiced");
    assert!(odd > 0, "some chunks end mid-sample");
    assert_eq!(starts, [0.0, 0.0], "each segment's clock starts at zero");
    assert_eq!(done, 1, "one done per flush");
}
