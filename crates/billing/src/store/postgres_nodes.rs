//! Several nodes on one Postgres database: leases, taking over a lost node's sessions, and
//! live events between nodes over `NOTIFY`.

use super::{LostSession, StoreError, EVENTS_CHANNEL, RESYNC_TOPIC};
use sqlx::PgPool;
use tokio::sync::mpsc;

/// The database's clock in ms: every lease is set and checked against the same clock.
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// A session's end when its checkpoints stopped: its last usage record, else its start.
macro_rules! last_checkpoint {
    () => {
        "COALESCE((SELECT MAX(created_at_ms) FROM usage_records u
            WHERE u.session_id = sessions.session_id), started_at_ms)"
    };
}
/// Longest payload sent inline. Postgres refuses notifications of 8000 bytes and more.
const INLINE_MAX: usize = 7900;
/// Marks a payload sent by reference: `@<event_payloads.id>`.
const BY_REF: char = '@';
/// How long a by-reference payload is kept for the nodes to read it.
const KEEP_REF_MS: i64 = 60_000;

pub(super) async fn renew_lease(pool: &PgPool, node_id: &str, lease_ms: i64) -> Result<bool, StoreError> {
    // `xmax = 0` only on a freshly inserted row: the node had no lease.
    let sql = concat!(
        "INSERT INTO nodes (node_id, started_at_ms, lease_until_ms) VALUES ($1, ",
        now_ms!(),
        ", ",
        now_ms!(),
        " + $2) ON CONFLICT (node_id) DO UPDATE SET lease_until_ms = excluded.lease_until_ms
         RETURNING (xmax = 0) AS inserted"
    );
    let inserted: bool = sqlx::query_scalar(sql).bind(node_id).bind(lease_ms).fetch_one(pool).await?;
    Ok(!inserted)
}

pub(super) async fn reap_lost_nodes(pool: &PgPool) -> Result<Vec<LostSession>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(concat!("DELETE FROM nodes WHERE lease_until_ms < ", now_ms!())).execute(&mut *tx).await?;
    // Sessions of a node without a lease: its row expired (just now, or by an earlier reaper).
    let sql = concat!(
        "UPDATE sessions SET status = 'closed', end_reason = 'node_lost', ended_at_ms = ",
        last_checkpoint!(),
        " WHERE status = 'open' AND node_id IS NOT NULL AND node_id NOT IN (SELECT node_id FROM nodes)
         RETURNING session_id, call_sid, org_id, node_id"
    );
    let lost: Vec<LostSession> = sqlx::query_as(sql).fetch_all(&mut *tx).await?;
    let ids: Vec<&str> = lost.iter().map(|l| l.session_id.as_str()).collect();
    sqlx::query("DELETE FROM holds WHERE session_id = ANY($1)").bind(&ids).execute(&mut *tx).await?;
    let purge = concat!("DELETE FROM event_payloads WHERE created_at_ms < ", now_ms!(), " - $1");
    sqlx::query(purge).bind(KEEP_REF_MS).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(lost)
}

pub(super) async fn publish_event(pool: &PgPool, payload: &str) -> Result<(), StoreError> {
    let sent = if payload.len() <= INLINE_MAX && !payload.starts_with(BY_REF) {
        payload.to_owned()
    } else {
        let sql =
            concat!("INSERT INTO event_payloads (payload, created_at_ms) VALUES ($1, ", now_ms!(), ") RETURNING id");
        let id: i64 = sqlx::query_scalar(sql).bind(payload).fetch_one(pool).await?;
        format!("{BY_REF}{id}")
    };
    sqlx::query("SELECT pg_notify($1, $2)").bind(EVENTS_CHANNEL).bind(sent).execute(pool).await?;
    Ok(())
}

/// Event payloads from every node, references resolved; a reference already purged is
/// skipped with a warning (the reader was over a minute behind).
pub(super) async fn subscribe_events(pool: &PgPool) -> Result<mpsc::Receiver<String>, StoreError> {
    let mut raw = super::postgres_notify::subscribe_to(pool, EVENTS_CHANNEL).await?;
    let (tx, rx) = mpsc::channel(256);
    let pool = pool.clone();
    tokio::spawn(async move {
        while let Some(p) = raw.recv().await {
            let resolved = match p.strip_prefix(BY_REF) {
                Some(id) if p != RESYNC_TOPIC => match fetch_ref(&pool, id).await {
                    Ok(Some(full)) => full,
                    Ok(None) => {
                        tracing::warn!(id, "a live event sent by reference is gone; skipped");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read a live event sent by reference; skipped");
                        continue;
                    }
                },
                _ => p,
            };
            if tx.send(resolved).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

async fn fetch_ref(pool: &PgPool, id: &str) -> Result<Option<String>, StoreError> {
    let Ok(id) = id.parse::<i64>() else { return Ok(None) };
    Ok(sqlx::query_scalar("SELECT payload FROM event_payloads WHERE id = $1").bind(id).fetch_optional(pool).await?)
}
