//! The org API: credentials (BYOK vault), BYOK settings, balance, usage, and the org key check
//! the other org routes (models, agents, numbers) share. Authenticated by the org's API key
//! (`Authorization: Bearer sk_…`); another org's ids answer 404, never 403, so ids leak nothing.

use crate::api::{bearer, ApiError, AppState};
use crate::api_auth::OrgKey;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use billing::org::StoredCredential;
use billing::store::{hash_api_key, load_context, CredentialRow, OrgRow};
use billing::UsageRecord;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::ToSchema;

/// A store failure, logged here and answered without its detail.
pub(crate) fn store_err(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "store error");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the store is unavailable")
}

/// The org behind the request's API key.
/// The key vault, or why keys cannot be saved or opened on this server.
fn vault(s: &AppState) -> Result<&std::sync::Arc<billing::vault::Vault>, ApiError> {
    s.deps.vault.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "vault_not_configured",
            "set SWITCHBOARD_MASTER_KEYS to save keys",
        )
    })
}

pub async fn org_auth(s: &AppState, headers: &HeaderMap) -> Result<OrgRow, ApiError> {
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or unknown API key");
    let key = bearer(headers).filter(|k| k.starts_with("sk_")).ok_or_else(unauthorized)?;
    s.deps.store.org_by_key_hash(&hash_api_key(key)).await.map_err(store_err)?.ok_or_else(unauthorized)
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialBody {
    provider: String,
    /// Defaults to `default`.
    #[serde(default)]
    name: Option<String>,
    /// A plain API key…
    #[serde(default)]
    api_key: Option<String>,
    /// …or a JSON credential for providers that need more than a key: AWS
    /// `{accessKeyId, secretAccessKey, sessionToken?}`, Azure, the carriers.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    credentials: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    credentials: Vec<StoredCredential>,
}

/// Providers one credential may be saved for: every provider of the rate table, the carriers
/// (whose credentials verify their webhooks and hang calls up) and `webhook` (the secrets of
/// agents' webhook tools).
fn known_provider(s: &AppState, p: &str) -> bool {
    crate::gateways::is_carrier(p)
        || p == billing::tools::WEBHOOK_VAULT_PROVIDER
        || s.deps.resolver.rates().iter().any(|r| r.provider == p)
}

/// The AWS providers take a JSON credential: its required fields, and the secret one whose
/// last 4 characters list it.
const AWS_FIELDS: [&str; 2] = ["accessKeyId", "secretAccessKey"];

fn last4_of(secret: &str) -> String {
    secret.chars().skip(secret.chars().count().saturating_sub(4)).collect()
}

/// A JSON credential (carriers, AWS) is checked whole at save time, naming a missing field,
/// and listed by the last 4 of its secret field (auth token, API key, secret access key), never
/// of the serialized JSON.
fn json_credential_last4(provider: &str, secret: &str) -> Result<Option<String>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_credentials", m);
    if crate::gateways::is_carrier(provider) {
        let creds = carrier::Credentials::parse(provider, secret).map_err(|e| bad(e.to_string()))?;
        return Ok(Some(last4_of(creds.secret_field())));
    }
    if crate::server::AWS_PROVIDERS.contains(&provider) && secret.trim_start().starts_with('{') {
        let v: Value =
            serde_json::from_str(secret).map_err(|_| bad(format!("{provider} credentials must be a JSON object")))?;
        for field in AWS_FIELDS {
            if v[field].as_str().is_none_or(|f| f.trim().is_empty()) {
                return Err(bad(format!("{provider} credentials: missing field {field}")));
            }
        }
        return Ok(Some(last4_of(v["secretAccessKey"].as_str().unwrap_or_default())));
    }
    Ok(None)
}

/// Save a provider key (encrypted at rest; never validated on save)
///
/// Answers the saved credential as listed: id, provider, name and the last 4 characters.
#[utoipa::path(put, path = "/api/credentials", operation_id = "putCredential", tag = "credentials",
    security(("orgKey" = [])), request_body = CredentialBody,
    responses((status = 200, body = StoredCredential)))]
pub async fn put_credential(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    body: Result<Json<CredentialBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<StoredCredential>, ApiError> {
    let Json(b) =
        body.map_err(|r| crate::api::body_rejected(r, r#"body must be JSON {"provider":"…","apiKey":"…"}"#))?;
    if !known_provider(&s, &b.provider) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_provider",
            format!("no provider {:?}", b.provider),
        ));
    }
    let secret = match (b.api_key, b.credentials) {
        (Some(k), None) if !k.trim().is_empty() => k.trim().to_string(),
        (None, Some(v)) if v.is_object() => v.to_string(),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give exactly one of apiKey (a string) or credentials (an object)",
            ))
        }
    };
    let vault = vault(&s)?;
    let json_last4 = json_credential_last4(&b.provider, &secret)?;
    let secret = SecretString::from(secret);
    let sealed = vault
        .seal(&org.id, &b.provider, &secret)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.code(), e.to_string()))?;
    let last4 = json_last4.unwrap_or_else(|| billing::keys::last4(&secret));
    let name = b.name.unwrap_or_else(|| "default".into());
    let row = CredentialRow {
        id: format!("conn_{}", uuid::Uuid::new_v4().simple()),
        org_id: org.id.clone(),
        provider: b.provider.clone(),
        name: name.clone(),
        sealed,
        last4: last4.clone(),
    };
    let id = s.deps.store.put_credential(&row).await.map_err(store_err)?;
    tracing::info!(org = %org.id, provider = %b.provider, connection = %id, "credential saved (not validated)");
    Ok(Json(StoredCredential { id, org_id: org.id, provider: b.provider, name, last4, sealed: String::new() }))
}

/// List saved credentials (id, provider, name, last 4 only)
#[utoipa::path(get, path = "/api/credentials", operation_id = "listCredentials", tag = "credentials",
    security(("orgKey" = [])), responses((status = 200, body = CredentialList)))]
pub async fn list_credentials(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
) -> Result<Json<CredentialList>, ApiError> {
    let credentials = s.deps.store.credentials(&org.id).await.map_err(store_err)?;
    Ok(Json(CredentialList { credentials }))
}

/// Delete a credential (404 for another org's id)
#[utoipa::path(delete, path = "/api/credentials/{id}", operation_id = "deleteCredential", tag = "credentials",
    security(("orgKey" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_credential(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.deps.store.delete_credential(&org.id, &id).await.map_err(store_err)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such credential"))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ByokBody {
    /// The master toggle: "use my own keys".
    #[serde(default)]
    use_own_keys: Option<bool>,
    /// `stt`, `tts` or `llm` → credential id (or null to clear).
    #[serde(default)]
    slots: HashMap<String, Option<String>>,
    /// Agency owner: sub-accounts run on platform keys and this wallet pays.
    #[serde(default)]
    wallet_deduction: Option<bool>,
}

/// The org's BYOK settings.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Byok {
    use_own_keys: bool,
    wallet_deduction: bool,
    /// Service → credential id.
    slots: HashMap<String, String>,
}

/// The BYOK settings and whether the org's plan allows BYOK at all.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ByokState {
    #[serde(flatten)]
    settings: Byok,
    plan: String,
    byok_allowed: bool,
    /// Why BYOK is not allowed, when it is not.
    reason: Option<String>,
}

/// BYOK master toggle, per-service slots, agency wallet deduction
#[utoipa::path(put, path = "/api/byok", operation_id = "putByok", tag = "credentials",
    security(("orgKey" = [])), request_body = ByokBody, responses((status = 200, body = Byok)))]
pub async fn put_byok(
    State(s): State<AppState>,
    OrgKey(mut org): OrgKey,
    body: Result<Json<ByokBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Byok>, ApiError> {
    let Json(b) = body.map_err(|r| crate::api::body_rejected(r, "body must be JSON"))?;
    if b.use_own_keys == Some(true) {
        let plan = s.deps.store.plan(&org.plan_id).await.map_err(store_err)?;
        if !plan.is_some_and(|p| p.byok_allowed) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "byok_not_in_plan",
                format!("the {:?} plan does not include bringing your own keys", org.plan_id),
            ));
        }
    }
    let creds = s.deps.store.credentials(&org.id).await.map_err(store_err)?;
    for (service, cred) in &b.slots {
        if !billing::Service::parse(service).is_some_and(|s| billing::Service::PROVIDED.contains(&s)) {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("unknown service {service:?}")));
        }
        if let Some(id) = cred {
            if !creds.iter().any(|c| &c.id == id) {
                return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such credential"));
            }
        }
    }
    for (service, cred) in &b.slots {
        s.deps.store.set_slot(&org.id, service, cred.as_deref()).await.map_err(store_err)?;
    }
    if let Some(v) = b.use_own_keys {
        org.use_own_keys = v;
    }
    if let Some(v) = b.wallet_deduction {
        org.wallet_deduction = v;
    }
    s.deps.store.update_org(&org).await.map_err(store_err)?;
    let slots = s.deps.store.slots(&org.id).await.map_err(store_err)?;
    Ok(Json(Byok { use_own_keys: org.use_own_keys, wallet_deduction: org.wallet_deduction, slots }))
}

/// The BYOK toggle and slots, and whether the plan allows BYOK (reason when not)
///
/// So a console can show the toggle disabled and say why.
#[utoipa::path(get, path = "/api/byok", operation_id = "getByok", tag = "credentials",
    security(("orgKey" = [])), responses((status = 200, body = ByokState)))]
pub async fn get_byok(State(s): State<AppState>, OrgKey(org): OrgKey) -> Result<Json<ByokState>, ApiError> {
    let plan = s.deps.store.plan(&org.plan_id).await.map_err(store_err)?;
    let allowed = plan.is_some_and(|p| p.byok_allowed);
    let reason = (!allowed).then(|| format!("the {:?} plan does not include bringing your own keys", org.plan_id));
    let slots = s.deps.store.slots(&org.id).await.map_err(store_err)?;
    let settings = Byok { use_own_keys: org.use_own_keys, wallet_deduction: org.wallet_deduction, slots };
    Ok(Json(ByokState { settings, plan: org.plan_id, byok_allowed: allowed, reason }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// Check only this credential (the console's per-key "Check").
    #[serde(default)]
    id: Option<String>,
}

/// One credential's check: `ok`, or `error` with the provider's reason.
#[derive(Serialize, ToSchema)]
pub struct CredentialCheck {
    #[serde(flatten)]
    credential: StoredCredential,
    /// `ok` or `error`.
    status: &'static str,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialChecks {
    results: Vec<CredentialCheck>,
}

/// Validate the saved keys (or one, ?id=) with one small real call per provider
///
/// Through the provider adapters. Saving a key never validates it; this does.
#[utoipa::path(post, path = "/api/credentials/check", operation_id = "checkCredentials", tag = "credentials",
    security(("orgKey" = [])), params(CheckQuery), responses((status = 200, body = CredentialChecks)))]
pub async fn check_credentials(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    Query(q): Query<CheckQuery>,
) -> Result<Json<CredentialChecks>, ApiError> {
    let vault = vault(&s)?;
    let mut creds = s.deps.store.credentials(&org.id).await.map_err(store_err)?;
    if let Some(id) = &q.id {
        creds.retain(|c| &c.id == id);
        if creds.is_empty() {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such credential"));
        }
    }
    let mut results = Vec::new();
    for c in creds {
        let outcome = match vault.open(&c.org_id, &c.provider, &c.sealed) {
            Err(e) => Err((e.code().to_string(), e.to_string())),
            Ok(key) => crate::validate::check(&s, &c.provider, &key).await,
        };
        let (status, code, message) = match outcome {
            Ok(()) => ("ok", None, None),
            Err((code, message)) => ("error", Some(code), Some(message)),
        };
        results.push(CredentialCheck { credential: c, status, code, message });
    }
    Ok(Json(CredentialChecks { results }))
}

/// What the org has to spend.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    org_id: String,
    plan: String,
    wallet_micros: i64,
    /// This month's plan credits not used yet.
    credits_left_micros: i64,
    /// Reserved by running calls.
    held_micros: i64,
    /// Credits, wallet and the allowed negative balance, less what is held.
    available_micros: i64,
    /// Who pays: this org, or its agency owner under wallet deduction.
    payer_org_id: String,
}

/// Wallet and remaining plan credits
#[utoipa::path(get, path = "/api/balance", operation_id = "getBalance", tag = "billing",
    security(("orgKey" = [])), responses((status = 200, body = Balance)))]
pub async fn balance(State(s): State<AppState>, OrgKey(org): OrgKey) -> Result<Json<Balance>, ApiError> {
    let ctx = load_context(s.deps.store.as_ref(), &org.id, None).await.map_err(store_err)?;
    Ok(Json(Balance {
        org_id: org.id,
        plan: org.plan_id,
        wallet_micros: org.wallet_micros,
        credits_left_micros: ctx.funds.credits_left_micros,
        held_micros: ctx.funds.held_micros,
        available_micros: ctx.funds.available(),
        payer_org_id: ctx.payer_org_id,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// One session's records (else the time range).
    #[serde(default)]
    session: Option<String>,
    /// From (ms since the epoch).
    #[serde(default)]
    from: Option<i64>,
    /// To (ms since the epoch).
    #[serde(default)]
    to: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageList {
    records: Vec<UsageRecord>,
    /// The sum of the records' `amount_micros`.
    total_micros: i64,
}

/// Usage records of a session or a time range
#[utoipa::path(get, path = "/api/usage", operation_id = "listUsage", tag = "billing",
    security(("orgKey" = [])), params(UsageQuery), responses((status = 200, body = UsageList)))]
pub async fn usage(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    Query(q): Query<UsageQuery>,
) -> Result<Json<UsageList>, ApiError> {
    let records = match q.session {
        Some(sid) => {
            let session = s.deps.store.session(&sid).await.map_err(store_err)?;
            match session {
                Some(row) if row.org_id == org.id => s.deps.store.usage_for_session(&sid).await.map_err(store_err)?,
                _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such session")),
            }
        }
        None => s
            .deps
            .store
            .usage_for_org(&org.id, q.from.unwrap_or(0), q.to.unwrap_or(i64::MAX))
            .await
            .map_err(store_err)?,
    };
    let total: i64 = records.iter().map(|r| r.amount_micros.0).sum();
    Ok(Json(UsageList { records, total_micros: total }))
}
