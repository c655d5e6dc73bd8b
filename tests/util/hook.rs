//! A local webhook receiver for agent tools: a real HTTP server on loopback, on its own thread,
//! that verifies each request's signature the way an org's service would and records what it
//! got.

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub raw: String,
    pub headers: Vec<(String, String)>,
    /// `gwauth::tool_webhook::verify` with the org's signing secret, at arrival.
    pub signature_ok: bool,
    /// The handler ran to its answer (false: the caller hung up while it waited).
    pub answered: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    got: Vec<Received>,
    delay: Duration,
    answer: Value,
}

pub struct Hook {
    pub url: String,
    state: Arc<Mutex<State>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Hook {
    /// Serves `POST /tools` on 127.0.0.1; answers `answer` after `delay`.
    pub fn start(secret: &'static str, answer: Value, delay: Duration) -> Hook {
        let state = Arc::new(Mutex::new(State { got: Vec::new(), delay, answer }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/tools",
                    post(move |headers: HeaderMap, body: Bytes| receive(shared.clone(), secret, headers, body)),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(5)).expect("hook listening");
        Hook { url: format!("http://{addr}/tools"), state, _stop: stop_tx }
    }

    pub fn got(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }
}

async fn receive(state: Arc<Mutex<State>>, secret: &str, headers: HeaderMap, body: Bytes) -> axum::Json<Value> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let signature = headers.get("x-switchboard-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let signature_ok = gwauth::tool_webhook::verify(secret.as_bytes(), signature, &body, now, 300).is_ok();
    let raw = String::from_utf8_lossy(&body).to_string();
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let received = Received {
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw,
        headers,
        signature_ok,
        answered: false,
    };
    let (at, delay, answer) = {
        let mut s = state.lock().unwrap();
        s.got.push(received);
        (s.got.len() - 1, s.delay, s.answer.clone())
    };
    tokio::time::sleep(delay).await;
    state.lock().unwrap().got[at].answered = true;
    axum::Json(if answer.is_null() { json!({}) } else { answer })
}
