//! The org API: credentials (BYOK vault), BYOK settings, model access, agents, balance, usage.
//! Authenticated by the org's API key (`Authorization: Bearer sk_…`); another org's ids answer
//! 404, never 403, so ids leak nothing.

use crate::api::{bearer, ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use billing::org::{access, provider_of, Access};
use billing::store::{hash_api_key, load_context, CredentialRow, OrgRow};
use billing::AgentSpec;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A store failure, logged here and answered without its detail.
pub(crate) fn store_err(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "store error");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the store is unavailable")
}

/// The org behind the request's API key.
pub async fn org_auth(s: &AppState, headers: &HeaderMap) -> Result<OrgRow, ApiError> {
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or unknown API key");
    let key = bearer(headers).filter(|k| k.starts_with("sk_")).ok_or_else(unauthorized)?;
    s.deps.store.org_by_key_hash(&hash_api_key(key)).await.map_err(store_err)?.ok_or_else(unauthorized)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialBody {
    provider: String,
    #[serde(default)]
    name: Option<String>,
    /// A plain API key…
    #[serde(default)]
    api_key: Option<String>,
    /// …or a JSON credential (AWS, Azure) for providers that need more than a key.
    #[serde(default)]
    credentials: Option<Value>,
}

/// Providers one credential may be saved for: every provider of the rate table, and the
/// carriers (whose credentials verify their webhooks and hang calls up).
fn known_provider(s: &AppState, p: &str) -> bool {
    crate::answer::CARRIERS.contains(&p) || s.deps.resolver.rates().iter().any(|r| r.provider == p)
}

/// The most money one admin request may move or set: one million dollars.
const MAX_MONEY_MICROS: i64 = 1_000_000 * 1_000_000;
/// The highest price of one unit (a minute, a million tokens, a thousand characters): $1,000.
const MAX_PRICE_MICROS: i64 = 1_000 * 1_000_000;

/// An admin amount outside sane bounds is refused, naming the field.
fn in_range(field: &str, v: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if (min..=max).contains(&v) {
        return Ok(());
    }
    Err(ApiError::new(StatusCode::BAD_REQUEST, "out_of_range", format!("{field} must be between {min} and {max}")))
}

/// The AWS providers take a JSON credential: its required fields, and the secret one whose
/// last 4 characters list it.
const AWS_PROVIDERS: [&str; 3] = ["bedrock", "polly", "transcribe"];
const AWS_FIELDS: [&str; 2] = ["accessKeyId", "secretAccessKey"];

fn last4_of(secret: &str) -> String {
    secret.chars().skip(secret.chars().count().saturating_sub(4)).collect()
}

/// A JSON credential (carriers, AWS) is checked whole at save time, naming a missing field,
/// and listed by the last 4 of its secret field (auth token, API key, secret access key), never
/// of the serialized JSON.
fn json_credential_last4(provider: &str, secret: &str) -> Result<Option<String>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_credentials", m);
    if crate::answer::CARRIERS.contains(&provider) {
        let creds = carrier::Credentials::parse(provider, secret).map_err(|e| bad(e.to_string()))?;
        return Ok(Some(last4_of(creds.secret_field())));
    }
    if AWS_PROVIDERS.contains(&provider) && secret.trim_start().starts_with('{') {
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

pub async fn put_credential(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CredentialBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let org = org_auth(&s, &headers).await?;
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
    let vault = s.deps.vault.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "vault_not_configured",
            "set SWITCHBOARD_MASTER_KEYS to save keys",
        )
    })?;
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
    Ok((StatusCode::OK, Json(json!({"id": id, "provider": b.provider, "name": name, "last4": last4}))))
}

pub async fn list_credentials(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    let creds = s.deps.store.credentials(&org.id).await.map_err(store_err)?;
    Ok(Json(json!({"credentials": creds})))
}

pub async fn delete_credential(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let org = org_auth(&s, &headers).await?;
    if s.deps.store.delete_credential(&org.id, &id).await.map_err(store_err)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such credential"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByokBody {
    #[serde(default)]
    use_own_keys: Option<bool>,
    /// service → credential id (or null to clear).
    #[serde(default)]
    slots: HashMap<String, Option<String>>,
    #[serde(default)]
    wallet_deduction: Option<bool>,
}

/// The BYOK master toggle ("use my keys"), per-service slots, and the agency wallet toggle.
pub async fn put_byok(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ByokBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let mut org = org_auth(&s, &headers).await?;
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
        if !["stt", "tts", "llm"].contains(&service.as_str()) {
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
    Ok(Json(json!({"useOwnKeys": org.use_own_keys, "walletDeduction": org.wallet_deduction, "slots": slots})))
}

/// `GET /api/byok`: the toggle, the slots, and whether the org's plan allows BYOK at all (with
/// the reason when it does not), so a console can show the toggle disabled and say why.
pub async fn get_byok(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    let plan = s.deps.store.plan(&org.plan_id).await.map_err(store_err)?;
    let allowed = plan.is_some_and(|p| p.byok_allowed);
    let reason = (!allowed).then(|| format!("the {:?} plan does not include bringing your own keys", org.plan_id));
    let slots = s.deps.store.slots(&org.id).await.map_err(store_err)?;
    Ok(Json(json!({"useOwnKeys": org.use_own_keys, "walletDeduction": org.wallet_deduction, "slots": slots,
                   "plan": org.plan_id, "byokAllowed": allowed, "reason": reason})))
}

#[derive(Deserialize)]
pub struct AccessQuery {
    service: String,
    model: String,
    #[serde(default)]
    provider: Option<String>,
}

pub async fn model_access(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AccessQuery>,
) -> Result<Json<Access>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    s.deps.refresh_rates().await;
    let ctx = load_context(s.deps.store.as_ref(), &org.id, None).await.map_err(store_err)?;
    let rates = s.deps.resolver.rates();
    let provider = q.provider.or_else(|| provider_of(&rates, &q.service, &q.model)).unwrap_or_default();
    Ok(Json(access(&rates, s.deps.resolver.keys(), &ctx, &q.service, &provider, &q.model)))
}

pub async fn model_catalog(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    s.deps.refresh_rates().await;
    let ctx = load_context(s.deps.store.as_ref(), &org.id, None).await.map_err(store_err)?;
    let rates = s.deps.resolver.rates();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for r in rates.iter().filter(|r| r.service != "telephony") {
        if seen.insert((r.service.clone(), r.provider.clone(), r.model.clone())) {
            out.push(access(&rates, s.deps.resolver.keys(), &ctx, &r.service, &r.provider, &r.model));
        }
    }
    Ok(Json(json!({"models": out})))
}

/// Public: every priced model with its price and whether the platform holds a key.
pub async fn rate_models(State(s): State<AppState>) -> Json<Value> {
    s.deps.refresh_rates().await;
    let rates = s.deps.resolver.rates();
    let keys = s.deps.resolver.keys();
    // Every service is listed, with an empty list when no provider is managed for it.
    let mut managed: HashMap<String, std::collections::BTreeSet<String>> =
        ["stt", "tts", "llm"].iter().map(|s| (s.to_string(), Default::default())).collect();
    let models: Vec<Value> = rates
        .iter()
        .map(|r| {
            let is_managed = r.managed && keys.get(&r.provider).is_some();
            if is_managed {
                managed.entry(r.service.clone()).or_default().insert(r.provider.clone());
            }
            json!({"service": r.service, "provider": r.provider, "model": r.model, "unit": r.unit.as_str(),
                   "priceMicros": r.price.0, "managed": is_managed, "unverified": r.unverified})
        })
        .collect();
    Json(json!({"models": models, "managedProviders": managed}))
}

/// Register an agent. Refused with `PROVIDER_KEY_REQUIRED` (BYOK-only provider, no key of the
/// org's) or `MODEL_NOT_ALLOWED` (unknown or not on the plan); never a silent platform key.
pub async fn create_agent(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AgentSpec>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let org = org_auth(&s, &headers).await?;
    s.deps.refresh_rates().await;
    let Json(spec) = body.map_err(|r| {
        crate::api::body_rejected(r, "body must be an agent: {stt, llm, tts: {provider, model[, voice]}, prompt}")
    })?;
    check_agent(&s, &org.id, &spec).await?;
    let id = format!("agent_{}", uuid::Uuid::new_v4().simple());
    let spec_json =
        serde_json::to_string(&spec).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "agent"))?;
    s.deps.store.create_agent(&id, &org.id, &spec_json).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "agent": spec}))))
}

/// Every model of an agent (fallbacks included) must be usable by the org now: refused with
/// `PROVIDER_KEY_REQUIRED` (naming the provider) or `MODEL_NOT_ALLOWED` otherwise. Shared by
/// create and update, so an edit cannot sneak in what creation refuses.
pub(crate) async fn check_agent(s: &AppState, org_id: &str, spec: &AgentSpec) -> Result<(), ApiError> {
    let ctx = load_context(s.deps.store.as_ref(), org_id, None).await.map_err(store_err)?;
    let rates = s.deps.resolver.rates();
    let fallbacks = spec.fallbacks.stt.iter().map(|c| ("stt", c)).chain(spec.fallbacks.llm.iter().map(|c| ("llm", c)));
    let fallbacks = fallbacks.chain(spec.fallbacks.tts.iter().map(|c| ("tts", c)));
    for (service, c) in [("stt", &spec.stt), ("llm", &spec.llm), ("tts", &spec.tts)].into_iter().chain(fallbacks) {
        let a = access(&rates, s.deps.resolver.keys(), &ctx, service, &c.provider, &c.model);
        match a.reason {
            "ok" => {}
            "byok_key_required" => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "PROVIDER_KEY_REQUIRED",
                    format!(
                    "{} ({service}) needs your own API key: add one with PUT /api/credentials and turn on useOwnKeys",
                    c.provider
                ),
                ))
            }
            reason => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "MODEL_NOT_ALLOWED",
                    format!("{service} model {}/{} is not allowed ({reason})", c.provider, c.model),
                ))
            }
        }
    }
    Ok(())
}

pub async fn get_agent(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    match s.deps.store.agent(&id).await.map_err(store_err)? {
        Some((owner, spec)) if owner == org.id => {
            let spec: Value = serde_json::from_str(&spec).unwrap_or_default();
            Ok(Json(json!({"id": id, "agent": spec})))
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such agent")),
    }
}

pub async fn balance(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    let ctx = load_context(s.deps.store.as_ref(), &org.id, None).await.map_err(store_err)?;
    Ok(Json(json!({
        "orgId": org.id, "plan": org.plan_id,
        "walletMicros": org.wallet_micros,
        "creditsLeftMicros": ctx.funds.credits_left_micros,
        "heldMicros": ctx.funds.held_micros,
        "availableMicros": ctx.funds.available(),
        "payerOrgId": ctx.payer_org_id,
    })))
}

#[derive(Deserialize)]
pub struct UsageQuery {
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    from: Option<i64>,
    #[serde(default)]
    to: Option<i64>,
}

pub async fn usage(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
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
    Ok(Json(json!({"records": records, "totalMicros": total})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgBody {
    name: String,
    #[serde(default = "default_plan")]
    plan: String,
    #[serde(default)]
    parent_org_id: Option<String>,
    #[serde(default)]
    wallet_micros: i64,
    #[serde(default)]
    negative_limit_micros: i64,
}

fn default_plan() -> String {
    "pro".into()
}

/// Admin: create an org. The API key is returned once and stored only as a hash.
pub async fn create_org(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<OrgBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::api::check_admin(&s, &headers)?;
    let Json(b) = body.map_err(|r| crate::api::body_rejected(r, r#"body must be JSON {"name":"…","plan":"pro"}"#))?;
    in_range("walletMicros", b.wallet_micros, 0, MAX_MONEY_MICROS)?;
    in_range("negativeLimitMicros", b.negative_limit_micros, 0, MAX_MONEY_MICROS)?;
    let (org, key) = crate::orgs::create(
        s.deps.store.as_ref(),
        &b.name,
        &b.plan,
        b.parent_org_id,
        b.wallet_micros,
        b.negative_limit_micros,
    )
    .await
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    Ok((StatusCode::CREATED, Json(json!({"orgId": org.id, "apiKey": key, "plan": org.plan_id}))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletBody {
    amount_micros: i64,
}

/// Admin: add money to (or take it from) an org's wallet.
pub async fn wallet_topup(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(org_id): Path<String>,
    body: Result<Json<WalletBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    crate::api::check_admin(&s, &headers)?;
    let Json(b) = body.map_err(|r| crate::api::body_rejected(r, r#"body must be JSON {"amountMicros": 1000000}"#))?;
    in_range("amountMicros", b.amount_micros, -MAX_MONEY_MICROS, MAX_MONEY_MICROS)?;
    if b.amount_micros == 0 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_amount", "amountMicros must not be 0"));
    }
    if s.deps.store.org(&org_id).await.map_err(store_err)?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such org"));
    }
    let bal = s.deps.store.add_wallet(&org_id, b.amount_micros, "admin").await.map_err(store_err)?;
    Ok(Json(json!({"orgId": org_id, "walletMicros": bal})))
}

/// Admin: create or replace a plan.
pub async fn put_plan(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<billing::org::Plan>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    crate::api::check_admin(&s, &headers)?;
    let Json(p) = body.map_err(|r| crate::api::body_rejected(r, "body must be a plan"))?;
    in_range("monthly_credit_micros", p.monthly_credit_micros, 0, MAX_MONEY_MICROS)?;
    in_range("byok_markup_bps", p.byok_markup_bps, 0, 10_000)?;
    in_range("platform_fee_micros_per_minute", p.platform_fee_micros_per_minute, 0, MAX_PRICE_MICROS)?;
    in_range("max_concurrent_calls", p.max_concurrent_calls, 0, 1_000_000)?;
    if p.id.trim().is_empty() || p.id.len() > 64 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_plan", "id must be 1 to 64 characters"));
    }
    s.deps.store.upsert_plan(&p).await.map_err(store_err)?;
    Ok(Json(json!({"plan": p})))
}

/// Validate the org's saved keys: one small real call per credential, through the provider
/// adapters. Saving a key never validates it; this does.
#[derive(Deserialize)]
pub struct CheckQuery {
    /// Check only this credential (the console's per-key "Check").
    #[serde(default)]
    id: Option<String>,
}

pub async fn check_credentials(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CheckQuery>,
) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    let vault = s.deps.vault.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "vault_not_configured",
            "set SWITCHBOARD_MASTER_KEYS to save keys",
        )
    })?;
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
        results.push(json!({"id": c.id, "provider": c.provider, "name": c.name, "last4": c.last4,
                            "status": status, "code": code, "message": message}));
    }
    Ok(Json(json!({"results": results})))
}

#[derive(Deserialize)]
pub struct ManagedBody {
    provider: String,
    #[serde(default)]
    service: Option<String>,
    managed: bool,
}

/// Admin: flip `managed` for a provider (optionally one service). Turning it on for a provider
/// whose platform key this server does not hold is refused. Every node picks it up at its next
/// session.
pub async fn set_managed(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ManagedBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    crate::api::check_admin(&s, &headers)?;
    let Json(b) =
        body.map_err(|r| crate::api::body_rejected(r, r#"body must be JSON {"provider":"…","managed":true}"#))?;
    if b.managed && s.deps.resolver.keys().get(&b.provider).is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "managed_key_missing",
            format!(
                "no platform key for {} is configured on this server (set {})",
                b.provider,
                crate::server::key_env(&b.provider)
            ),
        ));
    }
    let rows = s.deps.store.set_managed(&b.provider, b.service.as_deref(), b.managed).await.map_err(store_err)?;
    if rows == 0 {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no rate rows for that provider/service"));
    }
    s.deps.refresh_rates().await;
    tracing::info!(provider = %b.provider, service = ?b.service, managed = b.managed, rows, "managed flag changed");
    Ok(Json(json!({"provider": b.provider, "service": b.service, "managed": b.managed, "rows": rows})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateBody {
    service: String,
    provider: String,
    model: String,
    unit: String,
    price_micros: i64,
    managed: bool,
}

/// Admin: add or change one rate row (e.g. a new model or a price change). Used from the next
/// session on, on every node.
pub async fn put_rate(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    crate::api::check_admin(&s, &headers)?;
    let Json(b) = body.map_err(|r| {
        crate::api::body_rejected(r, "body must be JSON {service, provider, model, unit, priceMicros, managed}")
    })?;
    let unit = billing::RateUnit::parse(&b.unit)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("unknown unit {:?}", b.unit)))?;
    in_range("priceMicros", b.price_micros, 0, MAX_PRICE_MICROS)?;
    if !["stt", "tts", "llm", "telephony"].contains(&b.service.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "price must be ≥ 0 and service one of stt, tts, llm, telephony",
        ));
    }
    if b.managed && s.deps.resolver.keys().get(&b.provider).is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "managed_key_missing",
            format!("no platform key for {} is configured on this server", b.provider),
        ));
    }
    let rate = billing::Rate {
        service: b.service,
        provider: b.provider,
        model: b.model,
        unit,
        price: billing::MicroUsd(b.price_micros),
        managed: b.managed,
        unverified: false,
    };
    s.deps.store.upsert_rate(&rate).await.map_err(store_err)?;
    s.deps.refresh_rates().await;
    Ok(Json(json!({"rate": rate})))
}
