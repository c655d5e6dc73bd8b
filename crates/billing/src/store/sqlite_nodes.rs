//! Leases on SQLite: one process serves the file, so there is no other node to take over
//! from; the lease still records the node, and the same reaper closes the sessions of a
//! node id that stopped renewing (a restart under a new id).

use super::{now_ms, LostSession, StoreError};
use sqlx::SqlitePool;

pub(super) async fn renew_lease(pool: &SqlitePool, node_id: &str, lease_ms: i64) -> Result<bool, StoreError> {
    let now = now_ms();
    let existed: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM nodes WHERE node_id = ?)")
        .bind(node_id)
        .fetch_one(pool)
        .await?;
    sqlx::query(
        "INSERT INTO nodes (node_id, started_at_ms, lease_until_ms) VALUES (?, ?, ?)
         ON CONFLICT (node_id) DO UPDATE SET lease_until_ms = excluded.lease_until_ms",
    )
    .bind(node_id)
    .bind(now)
    .bind(now + lease_ms)
    .execute(pool)
    .await?;
    Ok(existed)
}

pub(super) async fn reap_lost_nodes(pool: &SqlitePool) -> Result<Vec<LostSession>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM nodes WHERE lease_until_ms < ?").bind(now_ms()).execute(&mut *tx).await?;
    macro_rules! lost {
        () => {
            "status = 'open' AND node_id IS NOT NULL AND node_id NOT IN (SELECT node_id FROM nodes)"
        };
    }
    sqlx::query(concat!("DELETE FROM holds WHERE session_id IN (SELECT session_id FROM sessions WHERE ", lost!(), ")"))
        .execute(&mut *tx)
        .await?;
    let sql = concat!(
        "UPDATE sessions SET status = 'closed', end_reason = 'node_lost',
           ended_at_ms = COALESCE((SELECT MAX(created_at_ms) FROM usage_records u WHERE u.session_id = sessions.session_id), started_at_ms)
         WHERE ",
        lost!(),
        " RETURNING session_id, call_sid, org_id, node_id"
    );
    let lost = sqlx::query_as(sql).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(lost)
}
