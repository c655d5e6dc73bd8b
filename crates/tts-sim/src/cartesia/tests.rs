//! The simulator seen by a raw client, for what the adapter never does.

use super::*;
use crate::raw::next_json as next;
use crate::{SimKeys, Voicing};
use futures::SinkExt;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const KEY: &str = "sk_car_raw";

async fn sim() -> CartesiaSim {
    let voicing = Voicing { pace: 50.0, first_audio_delay: Duration::from_millis(5), ..Voicing::default() };
    let cfg = CartesiaSimConfig { voicing, max_buffer_delay: Duration::from_millis(100) };
    CartesiaSim::start(SimKeys::from(vec![KEY.to_string()]), cfg).await.unwrap()
}

fn rejected(r: Result<impl Sized, tungstenite::Error>) -> (u16, serde_json::Value) {
    match r {
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            (resp.status().as_u16(), serde_json::from_slice(&body).unwrap())
        }
        Err(e) => panic!("expected an HTTP rejection, got {e}"),
        Ok(_) => panic!("expected an HTTP rejection"),
    }
}

#[tokio::test]
async fn upgrades_are_checked_like_the_provider() {
    let sim = sim().await;
    let url = format!("{}tts/websocket", sim.base_url());
    let (code, body) = rejected(tokio_tungstenite::connect_async(format!("{url}?cartesia_version=2025-04-16")).await);
    assert_eq!((code, body["error_code"].as_str()), (401, Some("missing_api_key")));
    let (code, body) =
        rejected(tokio_tungstenite::connect_async(format!("{url}?api_key=nope&cartesia_version=x")).await);
    assert_eq!((code, body["title"].as_str()), (401, Some("Unauthorized")));
    let (code, _) = rejected(tokio_tungstenite::connect_async(format!("{url}?api_key={KEY}")).await);
    assert_eq!(code, 400, "no version");
    let (code, _) = rejected(tokio_tungstenite::connect_async(format!("{}tts/sse", sim.base_url())).await);
    assert_eq!(code, 404);
    assert_eq!(sim.connections(), 0);
    assert_eq!(sim.seen_keys(), ["nope", KEY]);
}

#[tokio::test]
async fn bad_requests_get_error_messages_and_cancel_silences_a_context() {
    let sim = sim().await;
    let mut req = format!("{}tts/websocket?cartesia_version=2025-04-16", sim.base_url()).into_client_request().unwrap();
    req.headers_mut().insert("x-api-key", KEY.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    let base = serde_json::json!({"context_id":"a","model_id":"sonic-3","voice":{"mode":"id","id":"v"},
        "output_format":{"container":"raw","encoding":"pcm_f32le","sample_rate":16000},"transcript":"Hi. ","continue":true});
    ws.send(Message::text(base.to_string())).await.unwrap();
    let err = next(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["context_id"].as_str(), err["status_code"].as_u64()),
        (Some("error"), Some("a"), Some(400))
    );

    // Without a sentence end, text waits for max_buffer_delay, then plays; cancel stops it.
    let mut ok = base.clone();
    ok["output_format"]["encoding"] = "pcm_s16le".into();
    ok["transcript"] = "no sentence end yet".into();
    ws.send(Message::text(ok.to_string())).await.unwrap();
    let sent = tokio::time::Instant::now();
    let chunk = next(&mut ws).await;
    assert_eq!(chunk["type"], "chunk");
    assert!(sent.elapsed() >= Duration::from_millis(100));
    ws.send(Message::text(r#"{"context_id":"a","cancel":true}"#)).await.unwrap();
    let mut ctx_b = ok.clone();
    ctx_b["context_id"] = "b".into();
    ctx_b["transcript"] = "".into();
    ctx_b["continue"] = false.into();
    ws.send(Message::text(ctx_b.to_string())).await.unwrap();
    // Anything of `a` still in flight arrives before the cancel; `b` ends with `done`.
    loop {
        let m = next(&mut ws).await;
        if m["context_id"] == "b" {
            assert_eq!(m["type"], "done");
            break;
        }
    }
}
