//! How `switchboard bench` gets its calls in, the way a real peer would: against its own server
//! it provisions an org, its Twilio credential, an agent and a number, and every call goes
//! through Twilio's signed answer webhook and opens the stream with the token it got (and the
//! upgrade signed). Against `--server` it uses the operator token of the environment.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;

const ACCOUNT_SID: &str = "ACbench0000000000000000000000000000";
const NUMBER: &str = "+15550100000";

/// The credential every bench call is placed with.
pub enum CallAuth {
    /// `Authorization: Bearer` with the operator token (or nothing).
    Operator(Option<String>),
    /// Twilio's flow: signed answer webhook on `base`, then the stream it names.
    Twilio { base: String, auth_token: String },
}

/// The stream request and the `start` parameters of one call.
pub struct Opened {
    pub request: Request,
    pub params: Value,
}

async fn api(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http.request(method, &url).bearer_auth(key).json(&body).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url}: HTTP {status} {v}");
    }
    Ok(v)
}

/// `PROVIDER/MODEL[/VOICE]`, the voice defaulting to the provider's stock one.
fn tts_choice(choice: &str) -> anyhow::Result<(&str, &str, &str)> {
    let mut parts = choice.splitn(3, '/');
    let (provider, model) = match (parts.next(), parts.next()) {
        (Some(p), Some(m)) if !p.is_empty() && !m.is_empty() => (p, m),
        _ => anyhow::bail!("--tts takes PROVIDER/MODEL or PROVIDER/MODEL/VOICE, not {choice:?}"),
    };
    let stock = tts::registry::default_voice(provider).with_context(|| format!("no TTS provider {provider}"))?;
    Ok((provider, model, parts.next().filter(|v| !v.is_empty()).unwrap_or(stock)))
}

/// Provision the bench's tenant on its own server: an org with a large wallet, its Twilio
/// credential, the default agent's providers (or `tts`, `PROVIDER/MODEL[/VOICE]`, on the platform's
/// key) as its agent, and a number routed to it.
pub async fn provision(base: &str, admin: &str, tts: Option<&str>) -> anyhow::Result<CallAuth> {
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
    let post = reqwest::Method::POST;
    let mut spec = billing::AgentSpec::default();
    if let Some(choice) = tts {
        let (provider, model, voice) = tts_choice(choice)?;
        spec.tts = billing::ServiceChoice { provider: provider.into(), model: model.into(), voice: voice.into() };
        let managed = json!({"provider": provider, "managed": true});
        api(&http, reqwest::Method::PUT, format!("{base}/api/admin/rates/managed"), admin, managed).await?;
    }
    let org = api(
        &http,
        post.clone(),
        format!("{base}/api/admin/orgs"),
        admin,
        json!({"name": "bench", "plan": "pro", "walletMicros": 1_000_000_000_000i64}),
    )
    .await?;
    let key = org["apiKey"].as_str().context("no apiKey")?.to_string();
    let auth_token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let cred = json!({"provider": "twilio", "credentials": {"accountSid": ACCOUNT_SID, "authToken": auth_token}});
    api(&http, reqwest::Method::PUT, format!("{base}/api/credentials"), &key, cred).await?;
    let agent = api(&http, post.clone(), format!("{base}/api/agents"), &key, serde_json::to_value(spec)?).await?;
    let agent = agent["id"].as_str().context("no agent id")?;
    let number = json!({"number": NUMBER, "carrier": "twilio", "agentId": agent});
    api(&http, post, format!("{base}/api/numbers"), &key, number).await?;
    Ok(CallAuth::Twilio { base: base.to_string(), auth_token })
}

impl CallAuth {
    /// Open the way for the call `call_sid` on the stream `ws_url`.
    pub async fn open(&self, http: &reqwest::Client, ws_url: &str, call_sid: &str) -> anyhow::Result<Opened> {
        match self {
            CallAuth::Operator(token) => {
                let mut request = ws_url.into_client_request()?;
                if let Some(t) = token {
                    request.headers_mut().insert("authorization", format!("Bearer {t}").parse()?);
                }
                Ok(Opened { request, params: json!({}) })
            }
            CallAuth::Twilio { base, auth_token } => {
                let url = format!("{base}/twilio/voice");
                let params: Vec<(String, String)> =
                    [("AccountSid", ACCOUNT_SID), ("CallSid", call_sid), ("From", "+15550009999"), ("To", NUMBER)]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                let sig = gwauth::twilio::signature(auth_token, &url, &params);
                let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
                let resp = http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("X-Twilio-Signature", sig)
                    .body(body)
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    bail!("answer webhook: HTTP {}", resp.status());
                }
                let doc = resp.text().await?;
                let vt = doc.split("name=\"vt\" value=\"").nth(1).and_then(|r| r.split('"').next()).context("no vt")?;
                let stream = doc.split("url=\"").nth(1).and_then(|r| r.split('"').next()).context("no stream url")?;
                let mut request = stream.into_client_request()?;
                let upgrade = gwauth::twilio::signature(auth_token, stream, &[]);
                request.headers_mut().insert("x-twilio-signature", upgrade.parse()?);
                Ok(Opened { request, params: json!({"vt": vt}) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tts_choice;

    #[test]
    fn a_tts_choice_names_provider_model_and_maybe_a_voice() {
        assert_eq!(tts_choice("deepgram/flux/alexis-en").unwrap(), ("deepgram", "flux", "alexis-en"));
        assert_eq!(tts_choice("deepgram/aura-2").unwrap(), ("deepgram", "aura-2", "thalia-en"));
        assert_eq!(tts_choice("deepgram/aura-2/").unwrap().2, "thalia-en");
        for bad in ["deepgram", "/aura-2", "deepgram/", "nobody/x"] {
            assert!(tts_choice(bad).is_err(), "{bad}");
        }
    }
}
