//! The built-in tools that act on the line itself: `transfer_call` and `send_dtmf` through the
//! carrier's REST API (`end_call` needs none here: the session says its line and hangs up).
//! A call that did not come through a carrier (the browser client, AudioSocket) has no
//! [`CarrierLine`], and these tools answer the model that they cannot run.

use super::{error_result, Outcome};
use std::sync::Arc;
use tokio::sync::watch;
use url::Url;

/// The carrier call this session serves, with the org's credential for its REST API.
#[derive(Clone)]
pub(crate) struct CarrierLine {
    pub creds: carrier::Credentials,
    /// The carrier's API base (or its simulator's).
    pub base: Url,
    pub call_id: String,
    /// `--public-url`: where Plivo fetches a transfer's dial XML (`/plivo/transfer.xml`).
    pub public_url: Option<Url>,
}

/// `{"digits": "…"}`, the only argument of `send_dtmf`.
pub(super) fn dtmf_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {"digits": {"type": "string", "description": "Keys to press: 0-9, *, #, A-D; w waits half a second"}},
        "required": ["digits"]
    })
}

/// Transfers the call to `to` (validated when the agent was registered, checked again here).
/// The request runs on its own task: once issued it completes even if the caller barges in
/// and the round is dropped, and `transferred` tells the session it went through.
pub(super) async fn transfer(
    line: Option<CarrierLine>,
    http: &reqwest::Client,
    to: &str,
    transferred: Arc<watch::Sender<Option<String>>>,
) -> Outcome {
    let Some(line) = line else {
        return Outcome::Result(error_result("this call cannot be transferred: it did not come through a carrier"));
    };
    let target = match carrier::Target::parse(to) {
        Ok(t) => t,
        Err(e) => return Outcome::Result(error_result(&e.to_string())),
    };
    let mut order = carrier::Transfer::to(target);
    if matches!(line.creds, carrier::Credentials::Plivo { .. }) {
        let Some(url) = line.public_url.as_ref().and_then(|base| plivo_xml_url(base, to)) else {
            return Outcome::Result(error_result("a Plivo transfer needs the server's --public-url"));
        };
        order.plivo_xml = Some(carrier::PlivoXml { url, method: carrier::XmlMethod::Get });
    }
    let http = http.clone();
    let line = Arc::new(line);
    let target = to.to_string();
    let task = tokio::spawn(async move {
        let sent = carrier::transfer(&http, &line.base, &line.creds, &line.call_id, &order).await;
        if sent.is_ok() {
            transferred.send_replace(Some(target));
        }
        sent
    });
    match task.await {
        Ok(Ok(())) => {
            tracing::info!("call transferred through the carrier");
            Outcome::Transferred { to: to.to_string() }
        }
        Ok(Err(e)) => {
            tracing::warn!(code = e.code(), "transfer through the carrier failed: {e}");
            Outcome::Result(error_result(&format!("the transfer failed: {}", e.code())))
        }
        Err(_) => Outcome::Result(error_result("the transfer failed")),
    }
}

/// `{public_url}/plivo/transfer.xml?to=<target>`.
fn plivo_xml_url(base: &Url, to: &str) -> Option<Url> {
    let mut url = base.join("plivo/transfer.xml").ok()?;
    url.query_pairs_mut().append_pair("to", to);
    Some(url)
}

/// Presses the model's `digits` on the line.
pub(super) async fn send_dtmf(line: Option<&CarrierLine>, http: &reqwest::Client, args: &serde_json::Value) -> Outcome {
    let Some(line) = line else {
        return Outcome::Result(error_result("keys cannot be pressed on this call: it did not come through a carrier"));
    };
    let Some(digits) = args.get("digits").and_then(|d| d.as_str()) else {
        return Outcome::Result(error_result("give the keys to press as \"digits\""));
    };
    Outcome::Result(match carrier::send_dtmf(http, &line.base, &line.creds, &line.call_id, digits).await {
        Ok(()) => serde_json::json!({"ok": true, "pressed": digits}).to_string(),
        Err(e) => error_result(&format!("the keys were not pressed: {e}")),
    })
}
