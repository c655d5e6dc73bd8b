//! A plain websocket client for the simulators' own tests: the wire as the specs describe it.

use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

pub(crate) type Client = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Open `path_and_query` on the simulator at `base` with `headers`.
pub(crate) async fn open(
    base: &Url,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Client, tungstenite::Error> {
    let mut req = format!("{}{path_and_query}", base.as_str().trim_end_matches('/')).into_client_request().unwrap();
    for (k, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

/// Status and JSON body (`Null` if not JSON) of a refused upgrade.
pub(crate) fn http_error(e: tungstenite::Error) -> (u16, Value) {
    match e {
        tungstenite::Error::Http(resp) => {
            let body = resp.body().clone().unwrap_or_default();
            (resp.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// Text frames until the server closes (returned with its code and reason) or `last` says the
/// frame just read is the last one wanted.
pub(crate) async fn read_texts(ws: &mut Client, last: impl Fn(&str) -> bool) -> (Vec<String>, Option<(u16, String)>) {
    let mut msgs = Vec::new();
    let read = async {
        while let Some(Ok(msg)) = ws.next().await {
            match msg {
                Message::Text(t) => {
                    msgs.push(t.to_string());
                    if last(&t) {
                        return None;
                    }
                }
                Message::Close(f) => return f.map(|f| (u16::from(f.code), f.reason.to_string())),
                _ => {}
            }
        }
        None
    };
    let close = tokio::time::timeout(Duration::from_secs(10), read).await.expect("no close");
    (msgs, close)
}

/// JSON text frames until the server closes, and the close.
pub(crate) async fn read_json(ws: &mut Client) -> (Vec<Value>, Option<(u16, String)>) {
    let (texts, close) = read_texts(ws, |_| false).await;
    (texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect(), close)
}
