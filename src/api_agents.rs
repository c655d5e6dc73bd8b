//! The org's agents as a list, and edits to one: what the console's agent editor needs.
//! Creation and the single read are in `api_org`; an edit passes the same access check as
//! creation (`api_org::check_agent`).

use crate::api::{ApiError, AppState};
use crate::api_org::{check_agent, org_auth, store_err};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use billing::AgentSpec;
use serde_json::{json, Value};

/// `GET /api/agents`: every agent of the org, oldest first.
pub async fn list_agents(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    let rows = s.deps.store.agents(&org.id).await.map_err(store_err)?;
    let agents: Vec<Value> = rows
        .into_iter()
        .map(|(id, spec)| json!({"id": id, "agent": serde_json::from_str::<Value>(&spec).unwrap_or_default()}))
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// `PUT /api/agents/{id}`: replace the agent's spec. New calls use it; calls in flight keep
/// the plan they started with.
pub async fn update_agent(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<AgentSpec>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let org = org_auth(&s, &headers).await?;
    s.deps.refresh_rates().await;
    let Json(spec) = body.map_err(|r| {
        crate::api::body_rejected(r, "body must be an agent: {stt, llm, tts: {provider, model[, voice]}, prompt}")
    })?;
    check_agent(&s, &org.id, &spec).await?;
    let spec_json =
        serde_json::to_string(&spec).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "agent"))?;
    if !s.deps.store.update_agent(&id, &org.id, &spec_json).await.map_err(store_err)? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such agent"));
    }
    Ok(Json(json!({"id": id, "agent": spec})))
}
