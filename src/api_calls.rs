//! The calls API, per tenant: an org reads its own calls, sessions and live events with its API
//! key, the admin token reads everything, and only in sandbox mode may anyone read the server's
//! own `default` org. Another org's ids answer 404, like ids that do not exist.

use crate::api::{bearer, ApiError, AppState};
use crate::api_auth::CallViewer;
use crate::api_org::store_err;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing::store::{hash_api_key, SessionRow, TranscriptLine};
use billing::UsageRecord;
use serde::{Deserialize, Serialize};
use session::hub::Viewer;
use session::SessionEvent;
use std::convert::Infallible;
use tokio::sync::broadcast;

/// How long a watcher may wait for a call id to start.
const WAIT_FOR_START: std::time::Duration = std::time::Duration::from_secs(120);

/// Who is asking: the admin token, an org key, or (sandbox only) nobody, who sees `default`.
pub async fn viewer(s: &AppState, headers: &HeaderMap) -> Result<Viewer, ApiError> {
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or unknown API key");
    match bearer(headers) {
        Some(b) if s.deps.access.is_admin(b) => Ok(Viewer::Admin),
        Some(b) if b.starts_with("sk_") => {
            let org = s.deps.store.org_by_key_hash(&hash_api_key(b)).await.map_err(store_err)?;
            org.map(|o| Viewer::Org(o.id)).ok_or_else(unauthorized)
        }
        Some(_) => Err(unauthorized()),
        None if s.deps.access.sandbox => Ok(Viewer::Org(s.deps.org_id.clone())),
        None => Err(unauthorized()),
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
}

/// A call (one session) as listed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallSummary {
    session_id: String,
    /// The carrier's call id (or the client's), when it has one.
    call_sid: Option<String>,
    org_id: String,
    gateway: String,
    /// `open` or `closed`.
    status: String,
    started_at_ms: i64,
    ended_at_ms: Option<i64>,
    end_reason: Option<String>,
    /// The node that runs (or ran) the call.
    node_id: Option<String>,
}

impl From<SessionRow> for CallSummary {
    fn from(r: SessionRow) -> Self {
        Self {
            session_id: r.session_id,
            call_sid: r.call_sid,
            org_id: r.org_id,
            gateway: r.gateway,
            status: r.status,
            started_at_ms: r.started_at_ms,
            ended_at_ms: r.ended_at_ms,
            end_reason: r.end_reason,
            node_id: r.node_id,
        }
    }
}

/// A call with the plan it was served on and every usage record it left.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    call: CallSummary,
    /// The session plan: provider, model, `billed_to` and rate snapshot per service
    /// (credentials as id and last 4 only).
    plan: serde_json::Value,
    usage: Vec<UsageRecord>,
    /// What was said, in order (empty when the server keeps no transcripts).
    transcript: Vec<TranscriptLine>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CallList {
    calls: Vec<CallSummary>,
}

async fn session_json(s: &AppState, row: SessionRow) -> Result<Json<CallDetail>, ApiError> {
    let usage = s.deps.store.usage_for_session(&row.session_id).await.map_err(store_err)?;
    let transcript = s.deps.store.transcript(&row.session_id).await.map_err(store_err)?;
    let plan: serde_json::Value = serde_json::from_str(&row.plan_json).unwrap_or_default();
    Ok(Json(CallDetail { call: row.into(), plan, usage, transcript }))
}

fn visible(row: Option<SessionRow>, viewer: &Viewer) -> Option<SessionRow> {
    row.filter(|r| viewer.may_see(&r.org_id))
}

/// A call by the carrier's (or client's) call id
///
/// Tenant-scoped: an org sees its own calls, the admin token every call; another org's id
/// answers 404 like one that does not exist.
#[utoipa::path(get, path = "/api/calls/{call_id}", operation_id = "getCall", tag = "calls",
    security(("orgKey" = []), ("adminToken" = [])), params(("call_id" = String, Path)),
    responses((status = 200, body = CallDetail)))]
pub async fn call(
    State(s): State<AppState>,
    CallViewer(viewer): CallViewer,
    Path(call_id): Path<String>,
) -> Result<Json<CallDetail>, ApiError> {
    let row = s.deps.store.session_by_call_sid(&call_id).await.map_err(store_err)?;
    session_json(&s, visible(row, &viewer).ok_or_else(|| not_found("call"))?).await
}

/// A session by id (tenant-scoped like /api/calls/{call_id})
#[utoipa::path(get, path = "/api/sessions/{session_id}", operation_id = "getSession", tag = "calls",
    security(("orgKey" = []), ("adminToken" = [])), params(("session_id" = String, Path)),
    responses((status = 200, body = CallDetail)))]
pub async fn session_by_id(
    State(s): State<AppState>,
    CallViewer(viewer): CallViewer,
    Path(id): Path<String>,
) -> Result<Json<CallDetail>, ApiError> {
    let row = s.deps.store.session(&id).await.map_err(store_err)?;
    session_json(&s, visible(row, &viewer).ok_or_else(|| not_found("session"))?).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Started at or after (ms since the epoch).
    from: Option<i64>,
    /// Started before (ms since the epoch).
    to: Option<i64>,
    /// At most this many, 1 to 500 (default 100).
    limit: Option<i64>,
}

/// Calls, newest first
///
/// The viewer's org's calls (every org's for the admin token).
#[utoipa::path(get, path = "/api/calls", operation_id = "listCalls", tag = "calls",
    security(("orgKey" = []), ("adminToken" = [])), params(ListQuery),
    responses((status = 200, body = CallList)))]
pub async fn list_calls(
    State(s): State<AppState>,
    CallViewer(viewer): CallViewer,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CallList>, ApiError> {
    let Query(q) = q.map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "from, to (ms) and limit must be integers")
    })?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "limit must be 1 to 500"));
    }
    let org = match &viewer {
        Viewer::Admin => None,
        Viewer::Org(o) => Some(o.as_str()),
    };
    let rows = s
        .deps
        .store
        .list_sessions(org, q.from.unwrap_or(0), q.to.unwrap_or(i64::MAX), limit)
        .await
        .map_err(store_err)?;
    Ok(Json(CallList { calls: rows.into_iter().map(CallSummary::from).collect() }))
}

/// Live events of a call (server-sent events)
///
/// May be opened before the call starts, and is attached when it starts if the viewer may see
/// its org. Each event's data is one session event as JSON; the stream ends after `end`.
#[utoipa::path(get, path = "/api/calls/{call_id}/events", operation_id = "callEvents", tag = "calls",
    security(("orgKey" = []), ("adminToken" = [])), params(("call_id" = String, Path)),
    responses((status = 200, description = "Server-sent events", content_type = "text/event-stream", body = String)))]
pub async fn call_events(
    State(s): State<AppState>,
    CallViewer(viewer): CallViewer,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    s.deps.hub.prune_waiting();
    // Attached when the call starts here or its next event is relayed from another node; a
    // call that never starts does not hold the watcher forever.
    let pending = s.deps.hub.watch_call(&call_id, viewer);
    Ok(Sse::new(attached(pending)).keep_alive(KeepAlive::default()).into_response())
}

/// Live events of a running session (server-sent events)
#[utoipa::path(get, path = "/api/sessions/{session_id}/events", operation_id = "sessionEvents", tag = "calls",
    security(("orgKey" = []), ("adminToken" = [])), params(("session_id" = String, Path)),
    responses((status = 200, description = "Server-sent events", content_type = "text/event-stream", body = String)))]
pub async fn session_events(
    State(s): State<AppState>,
    CallViewer(viewer): CallViewer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(rx) = s.deps.hub.subscribe_session(&id, &viewer) {
        return Ok(Sse::new(events_of(rx)).keep_alive(KeepAlive::default()).into_response());
    }
    let row = s.deps.store.session(&id).await.map_err(store_err)?;
    let elsewhere = |r: &SessionRow| r.status == "open" && r.node_id.as_deref() != Some(s.deps.node_id.as_str());
    let row = visible(row, &viewer).filter(elsewhere).ok_or_else(|| not_found("live session"))?;
    s.deps.hub.prune_waiting();
    let pending = s.deps.hub.watch_remote_session(&row.session_id, viewer);
    Ok(Sse::new(attached(pending)).keep_alive(KeepAlive::default()).into_response())
}

/// The events of a watcher once it is attached; nothing if it never is (within the wait).
fn attached(
    pending: tokio::sync::oneshot::Receiver<broadcast::Receiver<SessionEvent>>,
) -> impl futures::Stream<Item = Result<Event, Infallible>> + Send + 'static {
    futures::stream::once(async move { tokio::time::timeout(WAIT_FOR_START, pending).await.ok()?.ok() })
        .filter_map(|rx| async move { rx })
        .flat_map(events_of)
}

use futures::StreamExt;

fn events_of(
    rx: broadcast::Receiver<SessionEvent>,
) -> impl futures::Stream<Item = Result<Event, Infallible>> + Send + 'static {
    futures::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let end = matches!(ev, SessionEvent::End { .. });
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    return Some((Ok::<_, Infallible>(Event::default().data(data)), (rx, end)));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "event watcher too slow; events skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
