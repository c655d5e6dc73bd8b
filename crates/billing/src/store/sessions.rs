//! Sessions and their usage rows: opened and closed by the session, counted and listed by the
//! API, abandoned ones closed at startup. Each query is written once and compiled for both
//! backends by [`session_queries!`].

/// The session queries over one backend. Like every `*_queries!` macro it expands inside a
/// backend module's `mod sessions` and uses that backend's `Pool`, `Db`, `DbRow` and `sql`
/// (which turns the `?` text into the backend's placeholders); see `backend.rs`.
macro_rules! session_queries {
    () => {
        use super::{sql, Db, DbRow, Pool};
        use crate::store::from_row;
        use crate::store::{SessionRow, StoreError};
        use crate::{BilledTo, MicroUsd, Service, UsageRecord, UsageUnit};
        use sqlx::Row;

        fn usage_from_row(r: &DbRow) -> Result<UsageRecord, StoreError> {
            let service: String = r.try_get("service")?;
            let unit: String = r.try_get("unit")?;
            let billed_to: String = r.try_get("billed_to")?;
            let seq: i64 = r.try_get("seq")?;
            Ok(UsageRecord {
                session_id: r.try_get("session_id")?,
                line: r.try_get("line")?,
                seq: u32::try_from(seq).map_err(|_| StoreError::Corrupt(format!("seq {seq}")))?,
                service: Service::parse(&service).ok_or_else(|| StoreError::Corrupt(format!("service {service}")))?,
                provider: r.try_get("provider")?,
                model: r.try_get("model")?,
                quantity: r.try_get("quantity")?,
                quantity_atoms: r.try_get("quantity_atoms")?,
                unit: UsageUnit::parse(&unit).ok_or_else(|| StoreError::Corrupt(format!("unit {unit}")))?,
                billed_to: BilledTo::parse(&billed_to)
                    .ok_or_else(|| StoreError::Corrupt(format!("billed_to {billed_to}")))?,
                amount_micros: MicroUsd(r.try_get("amount_micros")?),
                list_micros: MicroUsd(r.try_get("list_micros")?),
                org_id: r.try_get("org_id")?,
                estimated: r.try_get("estimated")?,
                credential_id: r.try_get("credential_id")?,
                created_at_ms: r.try_get("created_at_ms")?,
            })
        }

        pub(super) async fn open_session(pool: &Pool, row: &SessionRow) -> Result<(), StoreError> {
            let q = sql(
                "INSERT INTO sessions (session_id, call_sid, org_id, gateway, status, started_at_ms, ended_at_ms, end_reason, plan_json, node_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            );
            sqlx::query(q)
                .bind(&row.session_id)
                .bind(&row.call_sid)
                .bind(&row.org_id)
                .bind(&row.gateway)
                .bind(&row.status)
                .bind(row.started_at_ms)
                .bind(row.ended_at_ms)
                .bind(&row.end_reason)
                .bind(&row.plan_json)
                .bind(&row.node_id)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(super) async fn close_session(
            pool: &Pool,
            session_id: &str,
            ended_at_ms: i64,
            reason: &str,
        ) -> Result<(), StoreError> {
            let q = sql(
                "UPDATE sessions SET status = 'closed', ended_at_ms = ?, end_reason = ? WHERE session_id = ? AND status = 'open'",
            );
            sqlx::query(q).bind(ended_at_ms).bind(reason).bind(session_id).execute(pool).await?;
            Ok(())
        }

        pub(super) async fn session(pool: &Pool, session_id: &str) -> Result<Option<SessionRow>, StoreError> {
            let q = sql("SELECT * FROM sessions WHERE session_id = ?");
            let row = sqlx::query(q).bind(session_id).fetch_optional(pool).await?;
            row.as_ref().map(from_row).transpose()
        }

        pub(super) async fn session_by_call_sid(
            pool: &Pool,
            call_sid: &str,
        ) -> Result<Option<SessionRow>, StoreError> {
            let q = sql("SELECT * FROM sessions WHERE call_sid = ? ORDER BY started_at_ms DESC LIMIT 1");
            let row = sqlx::query(q).bind(call_sid).fetch_optional(pool).await?;
            row.as_ref().map(from_row).transpose()
        }

        /// `Ok(false)` when the record's key already exists. Takes any executor so a settle
        /// writes its records inside its own transaction.
        pub(super) async fn insert_usage_on<'e, E>(e: E, rec: &UsageRecord) -> Result<bool, StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let q = sql(
                "INSERT INTO usage_records (session_id, line, seq, service, provider, model, quantity, quantity_atoms, unit,
                    billed_to, amount_micros, estimated, credential_id, created_at_ms, list_micros, org_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (session_id, line, seq) DO NOTHING",
            );
            let res = sqlx::query(q)
                .bind(&rec.session_id)
                .bind(&rec.line)
                .bind(i64::from(rec.seq))
                .bind(rec.service.as_str())
                .bind(&rec.provider)
                .bind(&rec.model)
                .bind(rec.quantity)
                .bind(rec.quantity_atoms)
                .bind(rec.unit.as_str())
                .bind(rec.billed_to.as_str())
                .bind(rec.amount_micros.0)
                .bind(rec.estimated)
                .bind(&rec.credential_id)
                .bind(rec.created_at_ms)
                .bind(rec.list_micros.0)
                .bind(&rec.org_id)
                .execute(e)
                .await?;
            Ok(res.rows_affected() == 1)
        }

        /// Lines sort by byte (`COLLATE "C"`, which SQLite is given too) so both backends list
        /// `stt` before `stt@wallet` whatever the database's locale.
        pub(super) async fn usage_for_session(
            pool: &Pool,
            session_id: &str,
        ) -> Result<Vec<UsageRecord>, StoreError> {
            let q = sql(
                "SELECT * FROM usage_records WHERE session_id = ? ORDER BY created_at_ms, line COLLATE \"C\", seq",
            );
            let rows = sqlx::query(q).bind(session_id).fetch_all(pool).await?;
            rows.iter().map(usage_from_row).collect()
        }

        pub(super) async fn usage_for_org(
            pool: &Pool,
            org_id: &str,
            from_ms: i64,
            to_ms: i64,
        ) -> Result<Vec<UsageRecord>, StoreError> {
            let q = sql(
                "SELECT * FROM usage_records WHERE org_id = ? AND created_at_ms >= ? AND created_at_ms < ?
                 ORDER BY created_at_ms, line COLLATE \"C\", seq",
            );
            let rows = sqlx::query(q).bind(org_id).bind(from_ms).bind(to_ms).fetch_all(pool).await?;
            rows.iter().map(usage_from_row).collect()
        }

        /// Sessions a crashed process left open end at their last usage row; their holds go.
        /// `node`: only that node's (and rows from before nodes had ids); `None`: every one.
        pub(super) async fn close_abandoned(pool: &Pool, node: Option<&str>) -> Result<u64, StoreError> {
            macro_rules! mine {
                () => {
                    "status = 'open' AND (CAST(? AS TEXT) IS NULL OR node_id IS NULL OR node_id = ?)"
                };
            }
            let mut tx = pool.begin().await?;
            let holds = concat!("DELETE FROM holds WHERE session_id IN (SELECT session_id FROM sessions WHERE ", mine!(), ")");
            sqlx::query(sql(holds)).bind(node).bind(node).execute(&mut *tx).await?;
            let q = concat!(
                "UPDATE sessions SET status = 'closed', end_reason = 'abandoned',
                   ended_at_ms = COALESCE((SELECT MAX(created_at_ms) FROM usage_records u WHERE u.session_id = sessions.session_id), started_at_ms)
                 WHERE ",
                mine!()
            );
            let n = sqlx::query(sql(q)).bind(node).bind(node).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(n)
        }

        pub(super) async fn open_sessions(pool: &Pool, org_id: &str) -> Result<i64, StoreError> {
            let q = sql("SELECT COUNT(*) AS n FROM sessions WHERE org_id = ? AND status = 'open'");
            Ok(sqlx::query(q).bind(org_id).fetch_one(pool).await?.try_get("n")?)
        }

        pub(super) async fn list_sessions(
            pool: &Pool,
            org_id: Option<&str>,
            from_ms: i64,
            to_ms: i64,
            limit: i64,
        ) -> Result<Vec<SessionRow>, StoreError> {
            let q = sql(
                "SELECT * FROM sessions WHERE (? IS NULL OR org_id = ?) AND started_at_ms >= ? AND started_at_ms < ?
                 ORDER BY started_at_ms DESC, session_id LIMIT ?",
            );
            let rows = sqlx::query(q)
                .bind(org_id)
                .bind(org_id)
                .bind(from_ms)
                .bind(to_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(from_row).collect()
        }
    };
}
pub(super) use session_queries;
