//! The carrier's side of answering a call: post the signed answer webhook for `--number` with
//! the carrier account's credential, read the answer document, and say where the media
//! stream goes and what it must carry (the stream token, Twilio's upgrade signature). Each
//! carrier's answer is in its caller module, named by its registry row; the helpers are here.

use crate::cli::CallArgs;
use anyhow::{bail, Context};
use futures::future::BoxFuture;
use serde_json::Value;

/// What a carrier's answer function gets: the server, the account's credential, the called
/// number and the carrier's call id.
pub(crate) struct Webhook<'a> {
    pub http: &'a reqwest::Client,
    /// The server's HTTP base.
    pub base: &'a str,
    pub cred: &'a Value,
    pub to: &'a str,
    pub call: &'a str,
}

/// A carrier's side of answering a call (its caller module's `answer`), as a registry row holds it.
pub(crate) type AnswerCall = for<'a> fn(Webhook<'a>) -> BoxFuture<'a, anyhow::Result<Answered>>;

/// How to open the media stream the answer named.
pub(crate) struct Answered {
    pub url: String,
    /// Upgrade headers (Twilio's signature, Vonage's `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Start parameters (`vt`).
    pub params: Vec<(String, String)>,
}

/// The caller's number every simulated carrier call comes from.
pub(super) const FROM: &str = "+15550009999";

fn credential(args: &CallArgs) -> anyhow::Result<Value> {
    let raw = args.carrier_credential.as_deref().context("--number needs --carrier-credential")?;
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => raw.to_string(),
    };
    serde_json::from_str(&text).context("--carrier-credential is not JSON")
}

pub(super) fn field<'a>(v: &'a Value, name: &str) -> anyhow::Result<&'a str> {
    v[name].as_str().with_context(|| format!("--carrier-credential needs {name}"))
}

/// The text of `attr="…"` in an XML answer (our own documents: no entities but `&amp;`).
pub(super) fn attr<'a>(doc: &'a str, attr: &str) -> Option<&'a str> {
    let at = doc.find(&format!("{attr}=\""))? + attr.len() + 2;
    doc[at..].split('"').next()
}

pub(super) fn unescape(s: &str) -> String {
    quick_xml::escape::unescape(s).map_or_else(|_| s.to_string(), |t| t.into_owned())
}

/// Answer `number` over `gateway`'s webhook for the call `call_id`.
pub(super) async fn answer(args: &CallArgs, call_id: &str) -> anyhow::Result<Answered> {
    let number = args.number.as_deref().unwrap_or_default();
    let cred = credential(args)?;
    let base = super::http_base(&args.server);
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
    let Some(answer_call) = args.gateway.answer_call else {
        let carriers: Vec<&str> = crate::gateways::carriers().collect();
        bail!("--number is for carrier gateways ({})", carriers.join(", "))
    };
    answer_call(Webhook { http: &http, base: &base, cred: &cred, to: number, call: call_id }).await
}

pub(super) async fn read(resp: reqwest::Response, what: &str) -> anyhow::Result<String> {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("the {what} answer webhook was refused: HTTP {status} {body}");
    }
    Ok(body)
}

/// A form body, as carriers post their webhooks.
pub(super) fn form_body(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

pub(super) fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
