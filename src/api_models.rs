//! Which models an org may use (the three-gate access check, one model or every priced one),
//! and the public price list with the providers the platform holds keys for.

use crate::api::{ApiError, AppState};
use crate::api_auth::OrgKey;
use crate::api_org::store_err;
use axum::extract::{Query, State};
use axum::Json;
use billing::org::{access, provider_of, Access};
use billing::store::load_context;
use billing::{RateUnit, Service};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessQuery {
    /// `stt`, `tts` or `llm`.
    service: String,
    model: String,
    /// Defaults to the only provider pricing the model.
    #[serde(default)]
    provider: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ModelCatalog {
    models: Vec<Access>,
}

/// One priced model, as the public price list shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricedModel {
    service: String,
    provider: String,
    model: String,
    unit: RateUnit,
    /// Price of one `unit`.
    price_micros: i64,
    /// The platform holds a key for the provider (else BYOK only).
    managed: bool,
    /// A placeholder price an operator must confirm.
    unverified: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateModels {
    models: Vec<PricedModel>,
    /// Per service (`stt`, `tts`, `llm`, always all three), the providers with a platform key.
    managed_providers: BTreeMap<String, BTreeSet<String>>,
}

/// Three-gate access check for one model
///
/// Priced, allowed on the plan, and a key to use (the platform's, or the org's own).
#[utoipa::path(get, path = "/api/models/access", operation_id = "modelAccess", tag = "models",
    security(("orgKey" = [])), params(AccessQuery), responses((status = 200, body = Access)))]
pub async fn model_access(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    Query(q): Query<AccessQuery>,
) -> Result<Json<Access>, ApiError> {
    s.deps.refresh_rates().await;
    let ctx = load_context(s.deps.store.as_ref(), &org.id, None).await.map_err(store_err)?;
    let rates = s.deps.resolver.rates();
    let provider = q.provider.or_else(|| provider_of(&rates, &q.service, &q.model)).unwrap_or_default();
    Ok(Json(access(&rates, s.deps.resolver.keys(), &ctx, &q.service, &provider, &q.model)))
}

/// The access check for every priced model
#[utoipa::path(get, path = "/api/models/catalog", operation_id = "modelCatalog", tag = "models",
    security(("orgKey" = [])), responses((status = 200, body = ModelCatalog)))]
pub async fn model_catalog(State(s): State<AppState>, OrgKey(org): OrgKey) -> Result<Json<ModelCatalog>, ApiError> {
    s.deps.refresh_rates().await;
    let ctx = load_context(s.deps.store.as_ref(), &org.id, None).await.map_err(store_err)?;
    let rates = s.deps.resolver.rates();
    let mut seen = BTreeSet::new();
    let mut models = Vec::new();
    for r in rates.iter().filter(|r| r.service != Service::Telephony.as_str()) {
        if seen.insert((r.service.clone(), r.provider.clone(), r.model.clone())) {
            models.push(access(&rates, s.deps.resolver.keys(), &ctx, &r.service, &r.provider, &r.model));
        }
    }
    Ok(Json(ModelCatalog { models }))
}

/// Public: priced models and managedProviders per service
///
/// Every priced model with its price and whether the platform holds a key for it.
#[utoipa::path(get, path = "/api/rates/models", operation_id = "rateModels", tag = "models",
    responses((status = 200, body = RateModels)))]
pub async fn rate_models(State(s): State<AppState>) -> Json<RateModels> {
    s.deps.refresh_rates().await;
    let rates = s.deps.resolver.rates();
    let keys = s.deps.resolver.keys();
    let mut managed: BTreeMap<String, BTreeSet<String>> =
        Service::PROVIDED.iter().map(|s| (s.to_string(), BTreeSet::new())).collect();
    let models = rates
        .iter()
        .map(|r| {
            let is_managed = r.managed && keys.get(&r.provider).is_some();
            if is_managed {
                managed.entry(r.service.clone()).or_default().insert(r.provider.clone());
            }
            PricedModel {
                service: r.service.clone(),
                provider: r.provider.clone(),
                model: r.model.clone(),
                unit: r.unit,
                price_micros: r.price.0,
                managed: is_managed,
                unverified: r.unverified,
            }
        })
        .collect();
    Json(RateModels { models, managed_providers: managed })
}
