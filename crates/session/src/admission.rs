//! Who may open a session, decided at `start` before any provider is contacted, any hold is
//! placed or anything is billed.
//!
//! A session is let in by exactly one credential:
//! - the operator's admin token, or an org API key (`Authorization: Bearer` on the upgrade),
//!   for that org's agents;
//! - a single-use token minted for it: a carrier's stream token (from a verified answer
//!   webhook, bound to the carrier's call id), a browser's client token, or a registered
//!   AudioSocket call id;
//! - nothing at all, only in sandbox mode and only for the server's own `default` agent.

use crate::transport::StartInfo;
use crate::SessionDeps;
use billing::store::{hash_api_key, TokenUse};
use gwauth::stream_token::Carrier;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::time::Duration;
use url::Url;

/// Stream and client tokens are refused once older than this (their own `exp` is earlier).
pub const MAX_TOKEN_TTL_S: i64 = 600;

/// What the HTTP layer (or the AudioSocket listener) saw before `start`.
#[derive(Debug, Clone, Default)]
pub struct UpgradeAuth {
    /// `Authorization: Bearer …` on the upgrade.
    pub bearer: Option<String>,
    /// A token from the upgrade itself: `?token=`, a path segment, or Telnyx's
    /// `x-telnyx-streaming-auth-token` header.
    pub token: Option<String>,
    /// Twilio signs the Media Streams upgrade: `X-Twilio-Signature`, and the public URL it signed.
    pub twilio_signature: Option<String>,
    pub twilio_url: Option<String>,
    /// AudioSocket: the listener's configured agent, and whether call ids must be registered.
    pub listener: Option<ListenerBinding>,
}

/// An AudioSocket listener is bound to one agent (and so one org) in config.
#[derive(Debug, Clone)]
pub struct ListenerBinding {
    pub agent: String,
    pub require_registration: bool,
}

/// Server-wide access settings, fixed at startup.
pub struct AccessConfig {
    /// No provider keys and no admin token: anonymous calls to `default` are allowed.
    pub sandbox: bool,
    pub admin_token: Option<SecretString>,
    pub stream_keys: gwauth::stream_token::KeyRing,
    /// Carrier REST API bases (`twilio`, `telnyx`, `plivo`, `vonage`) for hang-ups.
    pub carrier_urls: HashMap<String, Url>,
    pub http: reqwest::Client,
    /// `--public-url`: where carriers reach this server (a Plivo transfer's dial XML).
    pub public_url: Option<Url>,
    /// `--webhooks-allow-private`: agents' webhook tools may call private addresses.
    pub allow_private_webhooks: bool,
    /// A started call with no media for this long is ended (`idle_timeout`).
    pub idle_timeout: Duration,
    /// Inbound audio may run this far ahead of the wall clock before frames are dropped.
    pub jitter: Duration,
}

impl AccessConfig {
    pub fn is_admin(&self, bearer: &str) -> bool {
        self.admin_token.as_ref().is_some_and(|t| same(bearer.as_bytes(), t.expose_secret().as_bytes()))
    }
}

/// Constant-time comparison, so a secret cannot be guessed byte by byte from timing.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// How the caller proved itself.
#[derive(Debug, Clone)]
pub enum Via {
    Sandbox,
    Admin,
    OrgKey,
    ClientToken,
    Listener,
    /// A carrier's stream token; the org's carrier credential hangs the call up.
    Carrier {
        credentials: Option<carrier::Credentials>,
    },
}

/// A caller let in: which agent answers, for which org.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub agent_id: String,
    /// `None` for the server's own `default` agent.
    pub org_id: Option<String>,
    pub via: Via,
}

/// Why a caller was turned away: a stable code for the close reason.
#[derive(Debug, Clone)]
pub struct Denied {
    pub code: &'static str,
    pub message: String,
    /// 1008 for a caller's fault, 1011 when we could not decide (store down).
    pub close: u16,
}

fn deny(code: &'static str, message: impl Into<String>) -> Denied {
    Denied { code, message: message.into(), close: 1008 }
}

fn unavailable(e: impl std::fmt::Display) -> Denied {
    tracing::error!(error = %e, "admission: store error");
    Denied { code: "store_unavailable", message: "the session store is unavailable".into(), close: 1011 }
}

fn now_ms() -> i64 {
    billing::store::now_ms()
}

/// Decide whether this `start` may open a session. Reads only our own store; never a provider.
pub async fn admit(deps: &SessionDeps, gateway: &str, up: &UpgradeAuth, start: &StartInfo) -> Result<Admitted, Denied> {
    if deps.drain.is_draining() {
        // 1013 "try again later": another node takes the call.
        return Err(Denied { code: "draining", message: "the server is shutting down".into(), close: 1013 });
    }
    let admitted = admit_caller(deps, gateway, up, start).await?;
    if let Some(org) = &admitted.org_id {
        check_concurrency(deps, org).await?;
    }
    Ok(admitted)
}

async fn admit_caller(
    deps: &SessionDeps,
    gateway: &str,
    up: &UpgradeAuth,
    start: &StartInfo,
) -> Result<Admitted, Denied> {
    let asked = start.params.get("agent").map(String::as_str).filter(|a| !a.is_empty());
    if let Some(l) = &up.listener {
        return admit_listener(deps, l, start).await;
    }
    if let Some(b) = up.bearer.as_deref() {
        if deps.access.is_admin(b) {
            let agent = asked.unwrap_or("default");
            let org_id = agent_org(deps, agent).await?;
            return Ok(Admitted { agent_id: agent.to_string(), org_id, via: Via::Admin });
        }
        if b.starts_with("sk_") {
            return admit_org_key(deps, b, asked).await;
        }
    }
    let token = up
        .token
        .as_deref()
        .or(up.bearer.as_deref())
        .or_else(|| start.params.get("vt").map(String::as_str))
        .or_else(|| start.params.get("token").map(String::as_str));
    if let Some(t) = token {
        return admit_token(deps, gateway, t, up, start).await;
    }
    match asked {
        None | Some("default") if deps.access.sandbox => {
            Ok(Admitted { agent_id: "default".into(), org_id: None, via: Via::Sandbox })
        }
        _ if deps.access.sandbox => Err(deny(
            "unauthenticated",
            "anonymous calls reach only the default agent; present an org key or a client token",
        )),
        _ => Err(deny("unauthenticated", "this server needs a credential: a stream token, client token or API key")),
    }
}

/// The org that owns `agent` (`None` for `default`); an unknown agent is refused.
async fn agent_org(deps: &SessionDeps, agent: &str) -> Result<Option<String>, Denied> {
    if agent == "default" {
        return Ok(None);
    }
    match deps.store.agent(agent).await.map_err(unavailable)? {
        Some((org, _)) => Ok(Some(org)),
        None => Err(deny("unknown_agent", format!("no agent {:?}", crate::transport::clip(agent)))),
    }
}

async fn admit_org_key(deps: &SessionDeps, key: &str, asked: Option<&str>) -> Result<Admitted, Denied> {
    let org = deps.store.org_by_key_hash(&hash_api_key(key)).await.map_err(unavailable)?;
    let org = org.ok_or_else(|| deny("unauthenticated", "unknown API key"))?;
    let agent = asked.ok_or_else(|| deny("agent_required", "name one of your agents in params.agent"))?;
    // Another org's agent reads as unknown, so ids leak nothing.
    match agent_org(deps, agent).await {
        Ok(Some(o)) if o == org.id => {
            Ok(Admitted { agent_id: agent.to_string(), org_id: Some(org.id), via: Via::OrgKey })
        }
        _ => Err(deny("unknown_agent", format!("no agent {:?}", crate::transport::clip(agent)))),
    }
}

async fn admit_token(
    deps: &SessionDeps,
    gateway: &str,
    token: &str,
    up: &UpgradeAuth,
    start: &StartInfo,
) -> Result<Admitted, Denied> {
    let carrier = Carrier::from_gateway(gateway).ok_or_else(|| deny("unauthenticated", "no tokens on this route"))?;
    let now = now_ms();
    let (sid, _) = deps
        .access
        .stream_keys
        .verify(token.trim(), carrier, now / 1000, MAX_TOKEN_TTL_S)
        .map_err(|e| deny("bad_token", format!("the stream token is not valid: {}", e.code())))?;
    let sid = hex::encode(sid);
    let row = match deps.store.consume_stream_token(&sid, now).await.map_err(unavailable)? {
        TokenUse::Granted(row) => row,
        TokenUse::Used => return Err(deny("token_used", "the stream token was already used")),
        TokenUse::Expired => return Err(deny("bad_token", "the stream token expired")),
        TokenUse::Unknown => return Err(deny("bad_token", "the stream token is unknown")),
    };
    if row.kind != gateway {
        return Err(deny("bad_token", "the stream token is for another gateway"));
    }
    if gateway == "client" {
        return Ok(Admitted { agent_id: row.agent_id, org_id: Some(row.org_id), via: Via::ClientToken });
    }
    if row.call_id.is_some() && row.call_id != start.call_id {
        return Err(deny("call_mismatch", "the stream token was minted for another call"));
    }
    let credentials = carrier_credentials(deps, &row.org_id, gateway).await?;
    if gateway == "twilio" {
        verify_twilio_upgrade(up, credentials.as_ref())?;
    }
    Ok(Admitted { agent_id: row.agent_id, org_id: Some(row.org_id), via: Via::Carrier { credentials } })
}

/// Twilio signs the Media Streams upgrade itself: check it with the org's auth token.
fn verify_twilio_upgrade(up: &UpgradeAuth, creds: Option<&carrier::Credentials>) -> Result<(), Denied> {
    let creds = creds.ok_or_else(|| deny("carrier_credential_missing", "the org has no twilio credential"))?;
    let (Some(sig), Some(url)) = (up.twilio_signature.as_deref(), up.twilio_url.as_deref()) else {
        return Err(deny("bad_signature", "the stream upgrade carries no X-Twilio-Signature"));
    };
    gwauth::twilio::verify(creds.secret_field(), url, &[], sig)
        .map_err(|_| deny("bad_signature", "X-Twilio-Signature does not match the stream URL"))
}

/// The org's saved credential for `carrier`, opened from the vault.
pub async fn carrier_credentials(
    deps: &SessionDeps,
    org_id: &str,
    carrier: &str,
) -> Result<Option<carrier::Credentials>, Denied> {
    let creds = deps.store.credentials(org_id).await.map_err(unavailable)?;
    let Some(row) = creds.into_iter().find(|c| c.provider == carrier) else {
        return Ok(None);
    };
    let Some(vault) = deps.vault.as_ref() else {
        return Ok(None);
    };
    let secret = vault.open(&row.org_id, carrier, &row.sealed).map_err(|e| {
        tracing::error!(code = e.code(), %carrier, "cannot open the org's carrier credential");
        deny("carrier_credential_unreadable", "the org's carrier credential cannot be opened")
    })?;
    carrier::Credentials::parse(carrier, secret.expose_secret())
        .map(Some)
        .map_err(|e| deny("carrier_credential_unreadable", e.to_string()))
}

async fn admit_listener(deps: &SessionDeps, l: &ListenerBinding, start: &StartInfo) -> Result<Admitted, Denied> {
    let org_id = agent_org(deps, &l.agent).await?;
    if l.require_registration {
        let uuid = start.call_id.as_deref().unwrap_or_default();
        match deps.store.consume_stream_token(uuid, now_ms()).await.map_err(unavailable)? {
            TokenUse::Granted(row) if row.kind == "asterisk" && row.agent_id == l.agent => {}
            TokenUse::Granted(_) => {
                return Err(deny("unregistered_call", "the call id was registered for another agent"))
            }
            TokenUse::Used => return Err(deny("token_used", "the call id was already used")),
            _ => return Err(deny("unregistered_call", "the call id was not registered through the API")),
        }
    }
    Ok(Admitted { agent_id: l.agent.clone(), org_id, via: Via::Listener })
}

async fn check_concurrency(deps: &SessionDeps, org_id: &str) -> Result<(), Denied> {
    let Some(org) = deps.store.org(org_id).await.map_err(unavailable)? else {
        return Err(deny("unknown_org", "the agent's org no longer exists"));
    };
    let cap = match deps.store.plan(&org.plan_id).await.map_err(unavailable)? {
        Some(p) => p.max_concurrent_calls,
        None => 0,
    };
    if cap > 0 && deps.store.open_sessions(org_id).await.map_err(unavailable)? >= cap {
        return Err(deny("concurrency_limit", format!("the plan allows {cap} concurrent calls")));
    }
    Ok(())
}
