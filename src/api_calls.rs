//! The calls API, per tenant: an org reads its own calls, sessions and live events with its API
//! key, the admin token reads everything, and only in sandbox mode may anyone read the server's
//! own `default` org. Another org's ids answer 404, like ids that do not exist.

use crate::api::{bearer, ApiError, AppState};
use crate::api_org::store_err;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing::store::{hash_api_key, SessionRow};
use serde::Deserialize;
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

async fn session_json(s: &AppState, row: SessionRow) -> Result<Json<serde_json::Value>, ApiError> {
    let usage = s.deps.store.usage_for_session(&row.session_id).await.map_err(store_err)?;
    let plan: serde_json::Value = serde_json::from_str(&row.plan_json).unwrap_or_default();
    Ok(Json(serde_json::json!({
        "session_id": row.session_id, "call_sid": row.call_sid, "org_id": row.org_id, "gateway": row.gateway,
        "status": row.status, "started_at_ms": row.started_at_ms, "ended_at_ms": row.ended_at_ms,
        "end_reason": row.end_reason, "plan": plan, "usage": usage,
    })))
}

fn visible(row: Option<SessionRow>, viewer: &Viewer) -> Option<SessionRow> {
    row.filter(|r| viewer.may_see(&r.org_id))
}

pub async fn call(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let viewer = viewer(&s, &headers).await?;
    let row = s.deps.store.session_by_call_sid(&call_id).await.map_err(store_err)?;
    session_json(&s, visible(row, &viewer).ok_or_else(|| not_found("call"))?).await
}

pub async fn session_by_id(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let viewer = viewer(&s, &headers).await?;
    let row = s.deps.store.session(&id).await.map_err(store_err)?;
    session_json(&s, visible(row, &viewer).ok_or_else(|| not_found("session"))?).await
}

#[derive(Deserialize)]
pub struct ListQuery {
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/calls?from=&to=&limit=` (ms, newest first, at most 500).
pub async fn list_calls(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let viewer = viewer(&s, &headers).await?;
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
    let calls: Vec<_> = rows
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "session_id": r.session_id, "call_sid": r.call_sid, "org_id": r.org_id, "gateway": r.gateway,
                "status": r.status, "started_at_ms": r.started_at_ms, "ended_at_ms": r.ended_at_ms,
                "end_reason": r.end_reason,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "calls": calls })))
}

/// Live events of a call as server-sent events; may be opened before the call starts, and is
/// attached when it starts if the viewer may see its org. Ends after the call's `end` event.
pub async fn call_events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    let viewer = viewer(&s, &headers).await?;
    s.deps.hub.prune_waiting();
    let pending = s.deps.hub.watch_call(&call_id, viewer);
    // A call that never starts does not hold the watcher forever.
    let stream = futures::stream::once(async move { tokio::time::timeout(WAIT_FOR_START, pending).await.ok()?.ok() })
        .filter_map(|rx| async move { rx })
        .flat_map(events_of);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// Live events of a running session, by session id.
pub async fn session_events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let viewer = viewer(&s, &headers).await?;
    let rx = s.deps.hub.subscribe_session(&id, &viewer).ok_or_else(|| not_found("live session"))?;
    Ok(Sse::new(events_of(rx)).keep_alive(KeepAlive::default()).into_response())
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
