//! The admin API (the operator's token): orgs, wallets, plans and the rate table. The managed
//! key rotation is in `api`.

use crate::api::{ApiError, AppState};
use crate::api_auth::AdminToken;
use crate::api_org::store_err;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use billing::org::Plan;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An org as the admin lists it: no key material (keys exist only as hashes).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgSummary {
    org_id: String,
    name: String,
    plan: String,
    /// The agency that owns this sub-account, if any.
    parent_org_id: Option<String>,
    wallet_micros: i64,
    credits_used_micros: i64,
    use_own_keys: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OrgList {
    orgs: Vec<OrgSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanList {
    plans: Vec<Plan>,
}

/// Every org, by name (no key material)
#[utoipa::path(get, path = "/api/admin/orgs", operation_id = "listOrgs", tag = "admin",
    security(("adminToken" = [])), responses((status = 200, body = OrgList)))]
pub async fn list_orgs(State(s): State<AppState>, _: AdminToken) -> Result<Json<OrgList>, ApiError> {
    let orgs = s.deps.store.orgs().await.map_err(store_err)?;
    let orgs = orgs
        .into_iter()
        .map(|o| OrgSummary {
            org_id: o.id,
            name: o.name,
            plan: o.plan_id,
            parent_org_id: o.parent_org_id,
            wallet_micros: o.wallet_micros,
            credits_used_micros: o.credits_used_micros,
            use_own_keys: o.use_own_keys,
        })
        .collect();
    Ok(Json(OrgList { orgs }))
}

/// Every plan, in the shape PUT takes
#[utoipa::path(get, path = "/api/admin/plans", operation_id = "listPlans", tag = "admin",
    security(("adminToken" = [])), responses((status = 200, body = PlanList)))]
pub async fn list_plans(State(s): State<AppState>, _: AdminToken) -> Result<Json<PlanList>, ApiError> {
    let mut plans = Vec::new();
    for id in s.deps.store.plan_ids().await.map_err(store_err)? {
        if let Some(p) = s.deps.store.plan(&id).await.map_err(store_err)? {
            plans.push(p);
        }
    }
    Ok(Json(PlanList { plans }))
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

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgBody {
    name: String,
    #[serde(default = "default_plan")]
    #[schema(default = "pro")]
    plan: String,
    /// The agency that owns the new org.
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgCreated {
    org_id: String,
    /// Shown this once; only its hash is stored.
    api_key: String,
    plan: String,
}

/// Create an org; its API key is returned once
///
/// The key is stored only as a hash.
#[utoipa::path(post, path = "/api/admin/orgs", operation_id = "createOrg", tag = "admin",
    security(("adminToken" = [])), request_body = OrgBody,
    responses((status = 201, body = OrgCreated)))]
pub async fn create_org(
    State(s): State<AppState>,
    _: AdminToken,
    body: Result<Json<OrgBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<OrgCreated>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(OrgCreated { org_id: org.id, api_key: key, plan: org.plan_id })))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletBody {
    /// Added to the wallet; negative takes money out. Not 0.
    amount_micros: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    org_id: String,
    /// The balance after the change.
    wallet_micros: i64,
}

/// Top up (or debit) an org's wallet
#[utoipa::path(post, path = "/api/admin/orgs/{org_id}/wallet", operation_id = "topUpWallet", tag = "admin",
    security(("adminToken" = [])), params(("org_id" = String, Path)), request_body = WalletBody,
    responses((status = 200, body = Wallet)))]
pub async fn wallet_topup(
    State(s): State<AppState>,
    _: AdminToken,
    Path(org_id): Path<String>,
    body: Result<Json<WalletBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Wallet>, ApiError> {
    let Json(b) = body.map_err(|r| crate::api::body_rejected(r, r#"body must be JSON {"amountMicros": 1000000}"#))?;
    in_range("amountMicros", b.amount_micros, -MAX_MONEY_MICROS, MAX_MONEY_MICROS)?;
    if b.amount_micros == 0 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_amount", "amountMicros must not be 0"));
    }
    if s.deps.store.org(&org_id).await.map_err(store_err)?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such org"));
    }
    let bal = s.deps.store.add_wallet(&org_id, b.amount_micros, "admin").await.map_err(store_err)?;
    Ok(Json(Wallet { org_id, wallet_micros: bal }))
}

#[derive(Serialize, ToSchema)]
pub struct PlanSaved {
    plan: Plan,
}

/// Create or replace a plan
#[utoipa::path(put, path = "/api/admin/plans", operation_id = "putPlan", tag = "admin",
    security(("adminToken" = [])), request_body = Plan,
    responses((status = 200, body = PlanSaved)))]
pub async fn put_plan(
    State(s): State<AppState>,
    _: AdminToken,
    body: Result<Json<Plan>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<PlanSaved>, ApiError> {
    let Json(p) = body.map_err(|r| crate::api::body_rejected(r, "body must be a plan"))?;
    in_range("monthly_credit_micros", p.monthly_credit_micros, 0, MAX_MONEY_MICROS)?;
    in_range("byok_markup_bps", p.byok_markup_bps, 0, 10_000)?;
    in_range("platform_fee_micros_per_minute", p.platform_fee_micros_per_minute, 0, MAX_PRICE_MICROS)?;
    in_range("max_concurrent_calls", p.max_concurrent_calls, 0, 1_000_000)?;
    if p.id.trim().is_empty() || p.id.len() > 64 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_plan", "id must be 1 to 64 characters"));
    }
    s.deps.store.upsert_plan(&p).await.map_err(store_err)?;
    Ok(Json(PlanSaved { plan: p }))
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct ManagedBody {
    provider: String,
    /// One service only (`stt`, `tts`, `llm`); every service of the provider when absent.
    #[serde(default)]
    service: Option<String>,
    managed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ManagedSet {
    #[serde(flatten)]
    set: ManagedBody,
    /// Rate rows changed.
    rows: u64,
}

/// Turn the platform key on or off for a provider
///
/// Flips `managed` for a provider (optionally one service). Turning it on for a provider whose
/// platform key this server does not hold is refused (409 `managed_key_missing`). Every node
/// picks it up at its next session.
#[utoipa::path(put, path = "/api/admin/rates/managed", operation_id = "setManaged", tag = "admin",
    security(("adminToken" = [])), request_body = ManagedBody,
    responses((status = 200, body = ManagedSet)))]
pub async fn set_managed(
    State(s): State<AppState>,
    _: AdminToken,
    body: Result<Json<ManagedBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ManagedSet>, ApiError> {
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
    s.deps.reload_rates().await;
    tracing::info!(provider = %b.provider, service = ?b.service, managed = b.managed, rows, "managed flag changed");
    Ok(Json(ManagedSet { set: b, rows }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateBody {
    service: String,
    provider: String,
    model: String,
    unit: String,
    price_micros: i64,
    managed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RateSaved {
    rate: billing::Rate,
}

/// Add or change one rate row
///
/// A new model or a price change, used from the next session on, on every node.
#[utoipa::path(put, path = "/api/admin/rates", operation_id = "putRate", tag = "admin",
    security(("adminToken" = [])), request_body = RateBody,
    responses((status = 200, body = RateSaved)))]
pub async fn put_rate(
    State(s): State<AppState>,
    _: AdminToken,
    body: Result<Json<RateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<RateSaved>, ApiError> {
    let Json(b) = body.map_err(|r| {
        crate::api::body_rejected(r, "body must be JSON {service, provider, model, unit, priceMicros, managed}")
    })?;
    let unit = billing::RateUnit::parse(&b.unit)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("unknown unit {:?}", b.unit)))?;
    in_range("priceMicros", b.price_micros, 0, MAX_PRICE_MICROS)?;
    if billing::Service::parse(&b.service).is_none_or(|s| s == billing::Service::Platform) {
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
    s.deps.reload_rates().await;
    Ok(Json(RateSaved { rate }))
}
