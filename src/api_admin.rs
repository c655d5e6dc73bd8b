//! Admin reads for the console: every org with its balance fields, and every plan. The admin
//! writes (create an org, top up, set a plan, rates) are in `api_org`.

use crate::api::{check_admin, ApiError, AppState};
use crate::api_org::store_err;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

/// `GET /api/admin/orgs`: every org, by name. No key material: keys exist only as hashes.
pub async fn list_orgs(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    check_admin(&s, &headers)?;
    let orgs = s.deps.store.orgs().await.map_err(store_err)?;
    let orgs: Vec<Value> = orgs
        .into_iter()
        .map(|o| {
            json!({"orgId": o.id, "name": o.name, "plan": o.plan_id, "parentOrgId": o.parent_org_id,
                   "walletMicros": o.wallet_micros, "creditsUsedMicros": o.credits_used_micros,
                   "useOwnKeys": o.use_own_keys})
        })
        .collect();
    Ok(Json(json!({ "orgs": orgs })))
}

/// `GET /api/admin/plans`: every plan, in the shape `PUT /api/admin/plans` takes.
pub async fn list_plans(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    check_admin(&s, &headers)?;
    let mut plans = Vec::new();
    for id in s.deps.store.plan_ids().await.map_err(store_err)? {
        if let Some(p) = s.deps.store.plan(&id).await.map_err(store_err)? {
            plans.push(p);
        }
    }
    Ok(Json(json!({ "plans": plans })))
}
