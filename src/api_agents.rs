//! The org's agents: create, read, list and edit, what the console's agent editor needs. Every
//! write passes one access check (`check_agent`), so an edit cannot sneak in what creation
//! refuses.

use crate::api::{ApiError, AppState};
use crate::api_auth::OrgKey;
use crate::api_org::store_err;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use billing::org::access;
use billing::store::load_context;
use billing::{AgentSpec, Service};
use serde::Serialize;
use utoipa::ToSchema;

/// An agent and its id.
#[derive(Serialize, ToSchema)]
pub struct AgentRecord {
    id: String,
    agent: AgentSpec,
}

#[derive(Serialize, ToSchema)]
pub struct AgentList {
    agents: Vec<AgentRecord>,
}

const AGENT_HINT: &str = "body must be an agent: {stt, llm, tts: {provider, model[, voice]}, prompt}";

/// A stored spec, read back. It was written from an `AgentSpec`, so failing to read it is a
/// store fault, not the caller's.
fn stored(id: String, spec: &str) -> Result<AgentRecord, ApiError> {
    let agent = serde_json::from_str(spec).map_err(|e| store_err(format!("agent {id}: {e}")))?;
    Ok(AgentRecord { id, agent })
}

/// Register an agent
///
/// Refused with `PROVIDER_KEY_REQUIRED` (a BYOK-only provider and no key of the org's) or
/// `MODEL_NOT_ALLOWED` (unknown, or not on the plan); never a silent platform key.
#[utoipa::path(post, path = "/api/agents", operation_id = "createAgent", tag = "agents",
    security(("orgKey" = [])), request_body = AgentSpec,
    responses((status = 201, body = AgentRecord)))]
pub async fn create_agent(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    body: Result<Json<AgentSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<AgentRecord>), ApiError> {
    s.deps.refresh_rates().await;
    let Json(spec) = body.map_err(|r| crate::api::body_rejected_in_detail(r, AGENT_HINT))?;
    check_agent(&s, &org.id, &spec).await?;
    let id = format!("agent_{}", uuid::Uuid::new_v4().simple());
    let spec_json =
        serde_json::to_string(&spec).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "agent"))?;
    s.deps.store.create_agent(&id, &org.id, &spec_json).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(AgentRecord { id, agent: spec })))
}

/// Every model of an agent (fallbacks included) must be usable by the org now: refused with
/// `PROVIDER_KEY_REQUIRED` (naming the provider) or `MODEL_NOT_ALLOWED` otherwise.
async fn check_agent(s: &AppState, org_id: &str, spec: &AgentSpec) -> Result<(), ApiError> {
    let ctx = load_context(s.deps.store.as_ref(), org_id, None).await.map_err(store_err)?;
    let rates = s.deps.resolver.rates();
    let f = &spec.fallbacks;
    let fallbacks = f.stt.iter().map(|c| (Service::Stt, c)).chain(f.llm.iter().map(|c| (Service::Llm, c)));
    let fallbacks = fallbacks.chain(f.tts.iter().map(|c| (Service::Tts, c)));
    check_tools(&ctx, &spec.tools, s.deps.access.allow_private_webhooks)?;
    let primaries = [(Service::Stt, &spec.stt), (Service::Llm, &spec.llm), (Service::Tts, &spec.tts)];
    for (service, c) in primaries.into_iter().chain(fallbacks) {
        let a = access(&rates, s.deps.resolver.keys(), &ctx, service.as_str(), &c.provider, &c.model);
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

/// The agent's tools: well formed (`billing::tools::validate_tools`), transfer targets a
/// carrier can dial, and every vault secret a webhook needs saved by the org (`webhook`
/// credentials: `signing`, and each header's), so no call starts with a tool it cannot run.
fn check_tools(
    ctx: &billing::org::OrgContext,
    tools: &[billing::AgentTool],
    allow_private: bool,
) -> Result<(), ApiError> {
    use billing::tools::{SIGNING_SECRET_NAME, WEBHOOK_VAULT_PROVIDER};
    use billing::ToolRun;
    let bad = |code: &'static str, m: String| ApiError::new(StatusCode::BAD_REQUEST, code, m);
    billing::tools::validate_tools(tools).map_err(|e| bad(e.code(), e.to_string()))?;
    let saved = |name: &str| ctx.credentials.iter().any(|c| c.provider == WEBHOOK_VAULT_PROVIDER && c.name == name);
    for t in tools {
        match &t.run {
            ToolRun::TransferCall { to } => {
                carrier::Target::parse(to)
                    .map_err(|e| bad("TRANSFER_TARGET_INVALID", format!("tool {}: {e}", t.name)))?;
            }
            ToolRun::Webhook(w) => {
                if !allow_private && private_host(&w.url) {
                    return Err(bad(
                        "WEBHOOK_INVALID",
                        format!(
                            "tool {}: the URL is on a private network; this server calls only public addresses (the operator can allow private ones with --webhooks-allow-private)",
                            t.name
                        ),
                    ));
                }
                let names = std::iter::once(SIGNING_SECRET_NAME).chain(w.headers.values().map(String::as_str));
                if let Some(missing) = names.into_iter().find(|n| !saved(n)) {
                    return Err(bad(
                        "WEBHOOK_SECRET_REQUIRED",
                        format!(
                            "tool {}: save the secret first: PUT /api/credentials {{\"provider\":\"{WEBHOOK_VAULT_PROVIDER}\",\"name\":\"{missing}\",\"apiKey\":\"…\"}}",
                            t.name
                        ),
                    ));
                }
            }
            ToolRun::EndCall { .. } | ToolRun::SendDtmf {} => {}
        }
    }
    Ok(())
}

/// A webhook host this server would refuse to call without `--webhooks-allow-private`: an IP
/// literal off the public internet, or `localhost`. (Names resolving to private addresses are
/// refused when called, see `session::is_public_ip`.)
fn private_host(url: &str) -> bool {
    match url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Ipv4(a)) => !session::is_public_ip(a.into()),
        Some(url::Host::Ipv6(a)) => !session::is_public_ip(a.into()),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        None => false,
    }
}

/// An agent (404 for another org's)
#[utoipa::path(get, path = "/api/agents/{id}", operation_id = "getAgent", tag = "agents",
    security(("orgKey" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AgentRecord)))]
pub async fn get_agent(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    Path(id): Path<String>,
) -> Result<Json<AgentRecord>, ApiError> {
    match s.deps.store.agent(&id).await.map_err(store_err)? {
        Some((owner, spec)) if owner == org.id => Ok(Json(stored(id, &spec)?)),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such agent")),
    }
}

/// The org's agents, oldest first
#[utoipa::path(get, path = "/api/agents", operation_id = "listAgents", tag = "agents",
    security(("orgKey" = [])), responses((status = 200, body = AgentList)))]
pub async fn list_agents(State(s): State<AppState>, OrgKey(org): OrgKey) -> Result<Json<AgentList>, ApiError> {
    let rows = s.deps.store.agents(&org.id).await.map_err(store_err)?;
    let agents = rows.into_iter().map(|(id, spec)| stored(id, &spec)).collect::<Result<_, _>>()?;
    Ok(Json(AgentList { agents }))
}

/// Replace an agent's spec
///
/// Same checks as creation (`PROVIDER_KEY_REQUIRED`, `MODEL_NOT_ALLOWED`). New calls use it;
/// calls in flight keep the plan they started with.
#[utoipa::path(put, path = "/api/agents/{id}", operation_id = "updateAgent", tag = "agents",
    security(("orgKey" = [])), params(("id" = String, Path)), request_body = AgentSpec,
    responses((status = 200, body = AgentRecord)))]
pub async fn update_agent(
    State(s): State<AppState>,
    OrgKey(org): OrgKey,
    Path(id): Path<String>,
    body: Result<Json<AgentSpec>, JsonRejection>,
) -> Result<Json<AgentRecord>, ApiError> {
    s.deps.refresh_rates().await;
    let Json(spec) = body.map_err(|r| crate::api::body_rejected_in_detail(r, AGENT_HINT))?;
    check_agent(&s, &org.id, &spec).await?;
    let spec_json =
        serde_json::to_string(&spec).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "agent"))?;
    if !s.deps.store.update_agent(&id, &org.id, &spec_json).await.map_err(store_err)? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such agent"));
    }
    Ok(Json(AgentRecord { id, agent: spec }))
}
