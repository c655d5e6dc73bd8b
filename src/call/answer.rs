//! The carrier's side of answering a call: post the signed answer webhook for `--number` with
//! the carrier account's credential, read the answer document, and say where the media
//! stream goes and what it must carry (the stream token, Twilio's upgrade signature).

use crate::cli::{CallArgs, Gateway};
use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{json, Value};

/// How to open the media stream the answer named.
pub(super) struct Answered {
    pub url: String,
    /// Upgrade headers (Twilio's signature, Vonage's `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Start parameters (`vt`).
    pub params: Vec<(String, String)>,
}

/// The caller's number every simulated carrier call comes from.
const FROM: &str = "+15550009999";

fn credential(args: &CallArgs) -> anyhow::Result<Value> {
    let raw = args.carrier_credential.as_deref().context("--number needs --carrier-credential")?;
    let text = match raw.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => raw.to_string(),
    };
    serde_json::from_str(&text).context("--carrier-credential is not JSON")
}

fn field<'a>(v: &'a Value, name: &str) -> anyhow::Result<&'a str> {
    v[name].as_str().with_context(|| format!("--carrier-credential needs {name}"))
}

/// The text of `attr="…"` in an XML answer (our own documents: no entities but `&amp;`).
fn attr<'a>(doc: &'a str, attr: &str) -> Option<&'a str> {
    let at = doc.find(&format!("{attr}=\""))? + attr.len() + 2;
    doc[at..].split('"').next()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Answer `number` over `gateway`'s webhook for the call `call_id`.
pub(super) async fn answer(args: &CallArgs, call_id: &str) -> anyhow::Result<Answered> {
    let number = args.number.as_deref().unwrap_or_default();
    let cred = credential(args)?;
    let base = super::http_base(&args.server);
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
    match args.gateway {
        Gateway::Twilio => twilio(&http, &base, &cred, number, call_id).await,
        Gateway::Telnyx => telnyx(&http, &base, &cred, number, call_id).await,
        Gateway::Plivo => plivo(&http, &base, &cred, number, call_id).await,
        Gateway::Vonage => vonage(&http, &base, &cred, number, call_id).await,
        Gateway::Client | Gateway::Asterisk => {
            bail!("--number is for carrier gateways (twilio, telnyx, plivo, vonage)")
        }
    }
}

async fn read(resp: reqwest::Response, what: &str) -> anyhow::Result<String> {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("the {what} answer webhook was refused: HTTP {status} {body}");
    }
    Ok(body)
}

/// A form body, as carriers post their webhooks.
fn form_body(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn twilio(http: &reqwest::Client, base: &str, cred: &Value, to: &str, call: &str) -> anyhow::Result<Answered> {
    let (sid, token) = (field(cred, "accountSid")?, field(cred, "authToken")?);
    let url = format!("{base}/twilio/voice");
    let params = pairs(&[("AccountSid", sid), ("CallSid", call), ("From", FROM), ("To", to), ("Direction", "inbound")]);
    let sig = gwauth::twilio::signature(token, &url, &params);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", sig)
        .body(form_body(&params))
        .send()
        .await?;
    let doc = read(resp, "Twilio").await?;
    let stream = unescape(attr(&doc, "url").context("the TwiML has no <Stream url>")?);
    let vt = doc.split("name=\"vt\" value=\"").nth(1).and_then(|r| r.split('"').next()).context("no vt parameter")?;
    // Twilio signs the upgrade: the stream URL as written, no parameters.
    let upgrade_sig = gwauth::twilio::signature(token, &stream, &[]);
    Ok(Answered {
        url: stream,
        headers: vec![("X-Twilio-Signature".into(), upgrade_sig)],
        params: pairs(&[("vt", vt)]),
    })
}

async fn telnyx(http: &reqwest::Client, base: &str, cred: &Value, to: &str, call: &str) -> anyhow::Result<Answered> {
    let seed = base64::engine::general_purpose::STANDARD
        .decode(field(cred, "signingKey")?)
        .context("signingKey is not base64")?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| anyhow::anyhow!("signingKey must be 32 bytes"))?;
    let url = format!("{base}/telnyx/texml");
    let body = form_body(&pairs(&[("AccountSid", "AC-telnyx"), ("CallSid", call), ("From", FROM), ("To", to)]));
    let ts = (billing::store::now_ms() / 1000).to_string();
    let sig = gwauth::telnyx::sign(&seed, &ts, body.as_bytes());
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("telnyx-timestamp", ts)
        .header("telnyx-signature-ed25519", sig)
        .body(body)
        .send()
        .await?;
    let doc = read(resp, "Telnyx").await?;
    let stream = unescape(attr(&doc, "url").context("the TeXML has no <Stream url>")?);
    let vt = doc.split("name=\"vt\" value=\"").nth(1).and_then(|r| r.split('"').next()).context("no vt parameter")?;
    Ok(Answered { url: stream, headers: vec![], params: pairs(&[("vt", vt)]) })
}

async fn plivo(http: &reqwest::Client, base: &str, cred: &Value, to: &str, call: &str) -> anyhow::Result<Answered> {
    let token = field(cred, "authToken")?;
    let url = format!("{base}/plivo/answer");
    let digits = to.trim_start_matches('+');
    let params =
        pairs(&[("CallUUID", call), ("From", FROM.trim_start_matches('+')), ("To", digits), ("Direction", "inbound")]);
    let nonce = uuid::Uuid::new_v4().as_u128().to_string();
    let sig = gwauth::plivo::signature_v3(token, "POST", &url, &params, &nonce);
    let resp = http
        .post(&url)
        .header("X-Plivo-Signature-V3", sig)
        .header("X-Plivo-Signature-V3-Nonce", nonce)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&params))
        .send()
        .await?;
    let doc = read(resp, "Plivo").await?;
    let headers = attr(&doc, "extraHeaders").context("the answer XML has no extraHeaders")?;
    let vt = headers.split([',', ';']).find_map(|kv| kv.strip_prefix("vt=")).context("no vt in extraHeaders")?;
    let stream = doc.split("<Stream").nth(1).and_then(|r| r.split('>').nth(1)).and_then(|r| r.split('<').next());
    let stream = unescape(stream.context("the answer XML has no <Stream> URL")?.trim());
    Ok(Answered { url: stream, headers: vec![], params: pairs(&[("vt", vt)]) })
}

async fn vonage(http: &reqwest::Client, base: &str, cred: &Value, to: &str, call: &str) -> anyhow::Result<Answered> {
    let (app, secret) = (field(cred, "applicationId")?, field(cred, "signatureSecret")?);
    let now = billing::store::now_ms() / 1000;
    let claims = json!({"iat": now, "jti": uuid::Uuid::new_v4().to_string(), "application_id": app});
    let jwt = gwauth::vonage::sign_webhook(secret, &claims);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("to", to.trim_start_matches('+')), ("from", FROM.trim_start_matches('+')), ("uuid", call)])
        .finish();
    let resp = http.get(format!("{base}/vonage/answer?{query}")).bearer_auth(jwt).send().await?;
    let ncco: Value = serde_json::from_str(&read(resp, "Vonage").await?).context("the NCCO is not JSON")?;
    let ep = &ncco[0]["endpoint"][0];
    let url = ep["uri"].as_str().context("the NCCO names no websocket uri")?.to_string();
    let auth = ep["authorization"]["value"].as_str().context("the NCCO has no authorization")?;
    let vt = ep["headers"]["vt"].as_str().context("the NCCO headers carry no vt")?;
    Ok(Answered { url, headers: vec![("Authorization".into(), auth.to_string())], params: pairs(&[("vt", vt)]) })
}
