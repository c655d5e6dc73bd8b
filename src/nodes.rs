//! Several nodes on one store (Postgres): this node's lease and the reaper that closes a lost
//! node's sessions, the rate table reloaded on notification, and live session events relayed
//! between nodes so any node's events endpoint can stream any call. On SQLite (one process)
//! only the lease runs: there is nobody to notify or relay to.

use anyhow::Context;
use billing::store::{LostSession, Store, RATES_TOPIC, RESYNC_TOPIC};
use session::hub::Relayed;
use session::{SessionDeps, SessionEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Relayed events waiting for the publisher before sessions' relays wait for it.
const RELAY_QUEUE: usize = 1024;

/// `--node-id`, checked, or a random id for this process.
pub fn node_id(arg: Option<&str>) -> anyhow::Result<String> {
    let Some(id) = arg.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
    };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_.@:".contains(c);
    if id.len() > 64 || !id.chars().all(ok_char) {
        anyhow::bail!("--node-id {id:?}: use at most 64 letters, digits and - _ . @ :");
    }
    Ok(id.to_string())
}

/// Take the lease (before serving: a store that refuses it fails the start), then keep it,
/// reap lost nodes, follow rate changes and relay events in background tasks.
pub async fn start(deps: Arc<SessionDeps>, lease: Duration) -> anyhow::Result<()> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    deps.store.renew_lease(&deps.node_id, lease_ms).await.context("registering this node's lease")?;
    if let Some(changes) = deps.store.subscribe_changes().await.context("listening for rate changes")? {
        deps.rates.follow_notifications();
        // A change made between the first load and LISTEN would be missed: load once more.
        deps.rates.notified(deps.store.as_ref(), &deps.resolver).await;
        tokio::spawn(follow_rates(deps.clone(), changes));
    }
    if let Some(events) = deps.store.subscribe_events().await.context("listening for other nodes' events")? {
        let (tx, rx) = mpsc::channel(RELAY_QUEUE);
        deps.hub.relay_to(&deps.node_id, tx);
        tokio::spawn(publish_events(deps.store.clone(), rx));
        tokio::spawn(deliver_events(deps.clone(), events));
    }
    tracing::info!(node_id = %deps.node_id, lease_secs = lease.as_secs(), "node registered");
    tokio::spawn(keep_lease(deps, lease_ms, lease / 3));
    Ok(())
}

/// Renew the lease every `every`; after each renewal, close the sessions of nodes whose lease
/// ran out.
async fn keep_lease(deps: Arc<SessionDeps>, lease_ms: i64, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match deps.store.renew_lease(&deps.node_id, lease_ms).await {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                node_id = %deps.node_id,
                "this node's lease had run out: other nodes may have closed its sessions (node_lost)"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew this node's lease");
                continue;
            }
        }
        match deps.store.reap_lost_nodes().await {
            Ok(lost) => {
                for l in lost {
                    announce_lost(&deps, l).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check for lost nodes"),
        }
    }
}

/// Log a session taken over from a lost node, and end its watchers on every node.
async fn announce_lost(deps: &SessionDeps, l: LostSession) {
    tracing::warn!(
        session_id = %l.session_id, lost_node = %l.node_id,
        "closed a lost node's session at its last checkpoint (node_lost); hold released"
    );
    let r = Relayed {
        node: l.node_id,
        session_id: l.session_id,
        call_id: l.call_sid,
        org_id: l.org_id,
        event: SessionEvent::End { reason: "node_lost".into() },
    };
    match serde_json::to_string(&r) {
        Ok(payload) => {
            if let Err(e) = deps.store.publish_event(&payload).await {
                tracing::warn!(error = %e, "cannot announce a lost session's end");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot encode a lost session's end"),
    }
}

/// Reload the rate table whenever a node changed it (or notifications may have been missed).
async fn follow_rates(deps: Arc<SessionDeps>, mut changes: mpsc::Receiver<String>) {
    while let Some(topic) = changes.recv().await {
        if topic == RATES_TOPIC || topic == RESYNC_TOPIC {
            deps.rates.notified(deps.store.as_ref(), &deps.resolver).await;
        }
    }
    tracing::error!("the rate-change listener stopped; the rate table is no longer followed");
}

/// Publish this node's session events, one at a time so each session's stay in order.
async fn publish_events(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Relayed>) {
    while let Some(r) = rx.recv().await {
        let payload = match serde_json::to_string(&r) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a session event for other nodes");
                continue;
            }
        };
        if let Err(e) = store.publish_event(&payload).await {
            tracing::warn!(error = %e, session_id = %r.session_id, "cannot publish a session event to other nodes");
        }
    }
}

/// Hand other nodes' session events to this node's watchers.
async fn deliver_events(deps: Arc<SessionDeps>, mut events: mpsc::Receiver<String>) {
    while let Some(payload) = events.recv().await {
        if payload == RESYNC_TOPIC {
            tracing::warn!("event listener reconnected: watchers of other nodes' calls may have missed events");
            continue;
        }
        match serde_json::from_str::<Relayed>(&payload) {
            Ok(r) if r.node == deps.node_id => {}
            Ok(r) => deps.hub.deliver(r),
            Err(e) => tracing::warn!(error = %e, "unreadable session event from another node; skipped"),
        }
    }
    tracing::error!("the event listener stopped; other nodes' calls can no longer be watched here");
}
