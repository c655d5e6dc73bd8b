//! Who may open a session: carrier numbers routed to agents, the single-use tokens that
//! answer webhooks, client-token requests and AudioSocket registrations mint, and the counts
//! and listings of sessions per org. Each query is written once (with `?` placeholders) and
//! compiled for both backends by [`access_queries!`].

use serde::Serialize;

/// A carrier phone number routed to one of an org's agents. `number` is E.164 (`+` and 6–15
/// digits), unique across orgs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberRow {
    pub id: String,
    pub org_id: String,
    pub number: String,
    pub carrier: String,
    pub agent_id: String,
    pub created_at_ms: i64,
}

/// A single-use admission: what a stream (or client) token, or a registered AudioSocket call
/// id, lets in. `kind` is the gateway it is good for; `call_id` the carrier's call it is bound
/// to (unique per kind, so a replayed answer webhook cannot mint a second token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTokenRow {
    pub sid: String,
    pub kind: String,
    pub org_id: String,
    pub agent_id: String,
    pub call_id: Option<String>,
    pub number_id: Option<String>,
    pub expires_at_ms: i64,
    pub used_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// The outcome of presenting a token: granted exactly once, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUse {
    Granted(StreamTokenRow),
    Unknown,
    Used,
    Expired,
}

/// Postgres numbers its placeholders; the queries below are written with `?` once.
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The access queries over one backend: `$pool` and `$row` are its pool and row types, `$sql` turns the `?` text
/// into that backend's placeholders.
macro_rules! access_queries {
    ($pool:ty, $row:ty, $sql:expr) => {
        use super::access::{NumberRow, StreamTokenRow, TokenUse};
        use super::{SessionRow, StoreError};
        use sqlx::Row;

        fn number_from_row(r: &$row) -> Result<NumberRow, StoreError> {
            Ok(NumberRow {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                number: r.try_get("number")?,
                carrier: r.try_get("carrier")?,
                agent_id: r.try_get("agent_id")?,
                created_at_ms: r.try_get("created_at_ms")?,
            })
        }

        fn token_from_row(r: &$row) -> Result<StreamTokenRow, StoreError> {
            Ok(StreamTokenRow {
                sid: r.try_get("sid")?,
                kind: r.try_get("kind")?,
                org_id: r.try_get("org_id")?,
                agent_id: r.try_get("agent_id")?,
                call_id: r.try_get("call_id")?,
                number_id: r.try_get("number_id")?,
                expires_at_ms: r.try_get("expires_at_ms")?,
                used_at_ms: r.try_get("used_at_ms")?,
                created_at_ms: r.try_get("created_at_ms")?,
            })
        }

        fn unique_violation(e: &sqlx::Error) -> bool {
            matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
        }

        pub(super) async fn create_number(pool: &$pool, n: &NumberRow) -> Result<bool, StoreError> {
            let sql = $sql("INSERT INTO numbers (id, org_id, number, carrier, agent_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)");
            let res = sqlx::query(sql)
                .bind(&n.id)
                .bind(&n.org_id)
                .bind(&n.number)
                .bind(&n.carrier)
                .bind(&n.agent_id)
                .bind(n.created_at_ms)
                .execute(pool)
                .await;
            match res {
                Ok(_) => Ok(true),
                Err(e) if unique_violation(&e) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }

        pub(super) async fn numbers(pool: &$pool, org_id: &str) -> Result<Vec<NumberRow>, StoreError> {
            let sql = $sql("SELECT * FROM numbers WHERE org_id = ? ORDER BY created_at_ms, id");
            let rows = sqlx::query(sql).bind(org_id).fetch_all(pool).await?;
            rows.iter().map(number_from_row).collect()
        }

        pub(super) async fn delete_number(pool: &$pool, org_id: &str, id: &str) -> Result<bool, StoreError> {
            let sql = $sql("DELETE FROM numbers WHERE org_id = ? AND id = ?");
            Ok(sqlx::query(sql).bind(org_id).bind(id).execute(pool).await?.rows_affected() == 1)
        }

        pub(super) async fn number(pool: &$pool, number: &str) -> Result<Option<NumberRow>, StoreError> {
            let sql = $sql("SELECT * FROM numbers WHERE number = ?");
            let row = sqlx::query(sql).bind(number).fetch_optional(pool).await?;
            row.as_ref().map(number_from_row).transpose()
        }

        pub(super) async fn put_stream_token(pool: &$pool, t: &StreamTokenRow) -> Result<bool, StoreError> {
            let sql = $sql(
                "INSERT INTO stream_tokens (sid, kind, org_id, agent_id, call_id, number_id, expires_at_ms, used_at_ms, created_at_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            );
            let res = sqlx::query(sql)
                .bind(&t.sid)
                .bind(&t.kind)
                .bind(&t.org_id)
                .bind(&t.agent_id)
                .bind(&t.call_id)
                .bind(&t.number_id)
                .bind(t.expires_at_ms)
                .bind(t.used_at_ms)
                .bind(t.created_at_ms)
                .execute(pool)
                .await;
            match res {
                Ok(_) => Ok(true),
                Err(e) if unique_violation(&e) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }

        /// Mark the token used in one statement, so two nodes presenting it at once cannot
        /// both win; on a miss, read it back only to say why.
        pub(super) async fn consume_stream_token(pool: &$pool, sid: &str, now_ms: i64) -> Result<TokenUse, StoreError> {
            let sql = $sql(
                "UPDATE stream_tokens SET used_at_ms = ? WHERE sid = ? AND used_at_ms IS NULL AND expires_at_ms >= ? RETURNING *",
            );
            if let Some(r) = sqlx::query(sql).bind(now_ms).bind(sid).bind(now_ms).fetch_optional(pool).await? {
                return Ok(TokenUse::Granted(token_from_row(&r)?));
            }
            let sql = $sql("SELECT * FROM stream_tokens WHERE sid = ?");
            let Some(r) = sqlx::query(sql).bind(sid).fetch_optional(pool).await? else {
                return Ok(TokenUse::Unknown);
            };
            let t = token_from_row(&r)?;
            Ok(if t.used_at_ms.is_some() { TokenUse::Used } else { TokenUse::Expired })
        }

        /// Tokens a day past their expiry are only kept for replay checks of that day.
        pub(super) async fn purge_stream_tokens(pool: &$pool, before_ms: i64) -> Result<u64, StoreError> {
            let sql = $sql("DELETE FROM stream_tokens WHERE expires_at_ms < ?");
            Ok(sqlx::query(sql).bind(before_ms).execute(pool).await?.rows_affected())
        }

        /// Check the payer's funds and place the session's hold in one transaction: the first
        /// statement locks the payer's row (Postgres) or takes the write lock (SQLite), so
        /// simultaneous starts are admitted one after another and never hold more than exists.
        pub(super) async fn place_hold(
            pool: &$pool,
            session_id: &str,
            org_id: &str,
            amount_micros: i64,
        ) -> Result<bool, StoreError> {
            let mut tx = pool.begin().await?;
            let lock = $sql("UPDATE orgs SET wallet_micros = wallet_micros WHERE id = ?");
            if sqlx::query(lock).bind(org_id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            let sql = $sql(
                "SELECT o.wallet_micros, o.credits_used_micros, o.credits_period, o.negative_limit_micros, p.monthly_credit_micros,
                   CAST((SELECT COALESCE(SUM(h.amount_micros), 0) FROM holds h WHERE h.org_id = o.id AND h.session_id <> ?) AS BIGINT) AS held
                 FROM orgs o JOIN plans p ON p.id = o.plan_id WHERE o.id = ?",
            );
            let r = sqlx::query(sql).bind(session_id).bind(org_id).fetch_one(&mut *tx).await?;
            let period: String = r.try_get("credits_period")?;
            let used: i64 = if period == super::period_of(super::now_ms()) { r.try_get("credits_used_micros")? } else { 0 };
            let monthly: i64 = r.try_get("monthly_credit_micros")?;
            let funds = crate::org::Funds {
                credits_left_micros: (monthly - used).max(0),
                wallet_micros: r.try_get("wallet_micros")?,
                negative_limit_micros: r.try_get("negative_limit_micros")?,
                held_micros: r.try_get("held")?,
            };
            if funds.available() < amount_micros {
                tx.rollback().await?;
                return Ok(false);
            }
            let sql = $sql(
                "INSERT INTO holds (session_id, org_id, amount_micros, updated_at_ms) VALUES (?, ?, ?, ?)
                 ON CONFLICT (session_id) DO UPDATE SET amount_micros = excluded.amount_micros, updated_at_ms = excluded.updated_at_ms",
            );
            sqlx::query(sql).bind(session_id).bind(org_id).bind(amount_micros).bind(super::now_ms()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        }

        pub(super) async fn open_sessions(pool: &$pool, org_id: &str) -> Result<i64, StoreError> {
            let sql = $sql("SELECT COUNT(*) AS n FROM sessions WHERE org_id = ? AND status = 'open'");
            Ok(sqlx::query(sql).bind(org_id).fetch_one(pool).await?.try_get("n")?)
        }

        pub(super) async fn list_sessions(
            pool: &$pool,
            org_id: Option<&str>,
            from_ms: i64,
            to_ms: i64,
            limit: i64,
        ) -> Result<Vec<SessionRow>, StoreError> {
            let sql = $sql(
                "SELECT * FROM sessions WHERE (? IS NULL OR org_id = ?) AND started_at_ms >= ? AND started_at_ms < ?
                 ORDER BY started_at_ms DESC, session_id LIMIT ?",
            );
            let rows = sqlx::query(sql)
                .bind(org_id)
                .bind(org_id)
                .bind(from_ms)
                .bind(to_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(session_from_row).collect()
        }
    };
}
pub(super) use access_queries;

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_placeholders_in_order() {
        assert_eq!(super::numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}
