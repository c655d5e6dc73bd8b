//! Routes into an org's agents: phone numbers (carrier number → agent), ephemeral client tokens
//! for browsers and apps, and registered AudioSocket call ids. Every token here is single-use
//! and short-lived, stored so any node sharing the store can check it once.

use crate::api::{ApiError, AppState};
use crate::api_auth::OrgKey;
use crate::api_org::store_err;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use billing::store::{NumberRow, OrgRow, StreamTokenRow};
use gwauth::stream_token::Carrier;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// The routing key of a called number (gateway-auth.md §1): a `sip:` URI's user part, one
/// leading `+` dropped, 6–15 digits, written back as `+digits`. Carriers that omit the `+`
/// (Plivo, Vonage) route the same way.
pub fn e164(raw: &str) -> Option<String> {
    let mut n = raw.trim();
    if let Some(rest) = n.strip_prefix("sips:").or_else(|| n.strip_prefix("sip:")) {
        n = rest.split(['@', ';']).next().unwrap_or_default();
    }
    let digits = n.strip_prefix('+').unwrap_or(n);
    let ok = (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("+{digits}"))
}

/// The org's agent, or a 404 that reads the same for another org's id as for none.
async fn own_agent(s: &AppState, org_id: &str, agent_id: &str) -> Result<(), ApiError> {
    match s.deps.store.agent(agent_id).await.map_err(store_err)? {
        Some((owner, _)) if owner == org_id => Ok(()),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_agent", format!("no agent {agent_id:?}"))),
    }
}

/// A new single-use token for `kind`, bound to the org, agent and (for carriers) call id.
/// `Ok(None)` when a token for that carrier call exists already: a replayed answer webhook.
pub async fn mint(
    s: &AppState,
    kind: &str,
    org_id: &str,
    agent_id: &str,
    call_id: Option<&str>,
    number_id: Option<&str>,
    ttl_s: i64,
) -> Result<Option<(String, i64)>, ApiError> {
    let carrier = Carrier::from_gateway(kind).ok_or_else(|| bad("bad_request", "no tokens for this gateway"))?;
    let sid = gwauth::stream_token::random_sid();
    let now = billing::store::now_ms();
    let exp_s = now / 1000 + ttl_s;
    let token = s.deps.access.stream_keys.mint(carrier, sid, u32::try_from(exp_s).unwrap_or(u32::MAX));
    let row = StreamTokenRow {
        sid: hex::encode(sid),
        kind: kind.to_string(),
        org_id: org_id.to_string(),
        agent_id: agent_id.to_string(),
        call_id: call_id.map(str::to_string),
        number_id: number_id.map(str::to_string),
        expires_at_ms: exp_s * 1000,
        used_at_ms: None,
        created_at_ms: now,
    };
    let fresh = s.deps.store.put_stream_token(&row).await.map_err(store_err)?;
    Ok(fresh.then_some((token, exp_s)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NumberBody {
    /// E.164 (a `sip:` URI's user part is accepted too).
    #[schema(example = "+14155550100")]
    number: String,
    /// `twilio`, `telnyx`, `plivo` or `vonage`.
    carrier: String,
    agent_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct NumberList {
    numbers: Vec<NumberRow>,
}

/// Route a carrier number to one of the org's agents
#[utoipa::path(post, path = "/api/numbers", operation_id = "createNumber", tag = "access",
    security(("orgKey" = [])), request_body = NumberBody,
    responses((status = 201, body = NumberRow)))]
pub async fn create_number(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    body: Result<Json<NumberBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<NumberRow>), ApiError> {
    let Json(b) =
        body.map_err(|r| crate::api::body_rejected(r, r#"body must be JSON {"number","carrier","agentId"}"#))?;
    let number = e164(&b.number).ok_or_else(|| bad("bad_number", "number must be E.164: + and 6 to 15 digits"))?;
    if !crate::gateways::is_carrier(&b.carrier) {
        return Err(bad("unknown_carrier", "carrier must be twilio, telnyx, plivo or vonage"));
    }
    own_agent(&s, &org.id, &b.agent_id).await?;
    let row = NumberRow {
        id: format!("num_{}", uuid::Uuid::new_v4().simple()),
        org_id: org.id.clone(),
        number,
        carrier: b.carrier,
        agent_id: b.agent_id,
        created_at_ms: billing::store::now_ms(),
    };
    if !s.deps.store.create_number(&row).await.map_err(store_err)? {
        return Err(ApiError::new(StatusCode::CONFLICT, "number_taken", "that number is already routed"));
    }
    tracing::info!(org = %org.id, number = %row.number, carrier = %row.carrier, "number routed");
    Ok((StatusCode::CREATED, Json(row)))
}

/// The org's numbers
#[utoipa::path(get, path = "/api/numbers", operation_id = "listNumbers", tag = "access",
    security(("orgKey" = [])), responses((status = 200, body = NumberList)))]
pub async fn list_numbers(State(s): State<AppState>, OrgKey(org): OrgKey) -> Result<Json<NumberList>, ApiError> {
    let numbers = s.deps.store.numbers(&org.id).await.map_err(store_err)?;
    Ok(Json(NumberList { numbers }))
}

/// Stop routing a number (404 for another org's id)
#[utoipa::path(delete, path = "/api/numbers/{id}", operation_id = "deleteNumber", tag = "access",
    security(("orgKey" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_number(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.deps.store.delete_number(&org.id, &id).await.map_err(store_err)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such number"))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenBody {
    agent_id: String,
    /// 1 to 600 seconds.
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientToken {
    /// Good for one call to the agent, on `/v1/client?token=…`.
    token: String,
    /// Seconds since the epoch.
    expires_at: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AudioSocketCall {
    /// The UUID the dialplan passes to `AudioSocket(uuid,host:port)`; single use.
    uuid: String,
    /// Seconds since the epoch.
    expires_at: i64,
}

/// The longest a client token may live: it only has to reach the browser and open one call.
const MAX_CLIENT_TOKEN_TTL_S: i64 = 600;

fn ttl(asked: Option<i64>, default: i64) -> Result<i64, ApiError> {
    let ttl = asked.unwrap_or(default);
    if !(1..=MAX_CLIENT_TOKEN_TTL_S).contains(&ttl) {
        return Err(bad("bad_ttl", format!("ttlSeconds must be 1 to {MAX_CLIENT_TOKEN_TTL_S}")));
    }
    Ok(ttl)
}

/// The prologue both token endpoints share: the org, its agent, and the token's lifetime.
async fn token_request(
    s: &AppState,
    org: OrgRow,
    body: Result<Json<TokenBody>, axum::extract::rejection::JsonRejection>,
    default_ttl: i64,
) -> Result<(String, String, i64), ApiError> {
    let Json(b) = body.map_err(|r| crate::api::body_rejected(r, r#"body must be JSON {"agentId","ttlSeconds"}"#))?;
    let ttl = ttl(b.ttl_seconds, default_ttl)?;
    own_agent(s, &org.id, &b.agent_id).await?;
    Ok((org.id, b.agent_id, ttl))
}

/// Mint a single-use client token for one call to an agent
///
/// What an org's backend hands a browser, so its API key never reaches the page (default
/// lifetime 60 s).
#[utoipa::path(post, path = "/api/client-tokens", operation_id = "createClientToken", tag = "access",
    security(("orgKey" = [])), request_body = TokenBody,
    responses((status = 201, body = ClientToken)))]
pub async fn create_client_token(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    body: Result<Json<TokenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<ClientToken>), ApiError> {
    let (org_id, agent_id, ttl) = token_request(&s, org, body, 60).await?;
    let (token, exp) = mint(&s, "client", &org_id, &agent_id, None, None, ttl)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "token collision"))?;
    Ok((StatusCode::CREATED, Json(ClientToken { token, expires_at: exp })))
}

/// Register an AudioSocket call id for one of the org's agents
///
/// The UUID an Asterisk dialplan will pass to `AudioSocket(uuid,host:port)`, for listeners
/// started with `--audiosocket-require-registration` (default lifetime 30 s).
#[utoipa::path(post, path = "/api/audiosocket/calls", operation_id = "registerAudioSocketCall", tag = "access",
    security(("orgKey" = [])), request_body = TokenBody,
    responses((status = 201, body = AudioSocketCall)))]
pub async fn register_audiosocket_call(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    body: Result<Json<TokenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<AudioSocketCall>), ApiError> {
    let (org_id, agent_id, ttl) = token_request(&s, org, body, 30).await?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let now = billing::store::now_ms();
    let row = StreamTokenRow {
        sid: uuid.clone(),
        kind: "asterisk".into(),
        org_id,
        agent_id,
        call_id: Some(uuid.clone()),
        number_id: None,
        expires_at_ms: now + ttl * 1000,
        used_at_ms: None,
        created_at_ms: now,
    };
    s.deps.store.put_stream_token(&row).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(AudioSocketCall { uuid, expires_at: now / 1000 + ttl })))
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn routing_keys() {
        assert_eq!(e164("+15550001111").as_deref(), Some("+15550001111"));
        assert_eq!(e164(" 15550001111 ").as_deref(), Some("+15550001111"));
        assert_eq!(e164("sip:+15550001111@example.com;transport=udp").as_deref(), Some("+15550001111"));
        assert_eq!(e164("+1555"), None);
        assert_eq!(e164("+1555000111122223"), None);
        assert_eq!(e164("+1555a001111"), None);
        assert_eq!(e164("sip:alice@example.com"), None);
    }
}
