//! Who may open a session: carrier numbers routed to agents, the single-use tokens that
//! answer webhooks, client-token requests and AudioSocket registrations mint. Each query is
//! written once (with `?` placeholders) and compiled for both backends by [`access_queries!`].

use serde::Serialize;

/// A carrier phone number routed to one of an org's agents. `number` is E.164 (`+` and 6–15
/// digits), unique across orgs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

/// An insert hit a unique key (both backends report it the same way through sqlx).
pub(super) fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The access queries over one backend (see `session_queries!` for what they expect in scope).
macro_rules! access_queries {
    () => {
        use super::{sql, Pool};
        use crate::store::from_row;
        use crate::store::access::{unique_violation, NumberRow, StreamTokenRow, TokenUse};
        use crate::store::StoreError;

        pub(super) async fn create_number(pool: &Pool, n: &NumberRow) -> Result<bool, StoreError> {
            let q = sql(
                "INSERT INTO numbers (id, org_id, number, carrier, agent_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
            );
            let res = sqlx::query(q)
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

        pub(super) async fn numbers(pool: &Pool, org_id: &str) -> Result<Vec<NumberRow>, StoreError> {
            let q = sql("SELECT * FROM numbers WHERE org_id = ? ORDER BY created_at_ms, id");
            let rows = sqlx::query(q).bind(org_id).fetch_all(pool).await?;
            rows.iter().map(from_row).collect()
        }

        pub(super) async fn delete_number(pool: &Pool, org_id: &str, id: &str) -> Result<bool, StoreError> {
            let q = sql("DELETE FROM numbers WHERE org_id = ? AND id = ?");
            Ok(sqlx::query(q).bind(org_id).bind(id).execute(pool).await?.rows_affected() == 1)
        }

        pub(super) async fn number(pool: &Pool, number: &str) -> Result<Option<NumberRow>, StoreError> {
            let q = sql("SELECT * FROM numbers WHERE number = ?");
            let row = sqlx::query(q).bind(number).fetch_optional(pool).await?;
            row.as_ref().map(from_row).transpose()
        }

        pub(super) async fn put_stream_token(pool: &Pool, t: &StreamTokenRow) -> Result<bool, StoreError> {
            let q = sql(
                "INSERT INTO stream_tokens (sid, kind, org_id, agent_id, call_id, number_id, expires_at_ms, used_at_ms, created_at_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            );
            let res = sqlx::query(q)
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
        pub(super) async fn consume_stream_token(pool: &Pool, sid: &str, now_ms: i64) -> Result<TokenUse, StoreError> {
            let q = sql(
                "UPDATE stream_tokens SET used_at_ms = ? WHERE sid = ? AND used_at_ms IS NULL AND expires_at_ms >= ? RETURNING *",
            );
            if let Some(r) = sqlx::query(q).bind(now_ms).bind(sid).bind(now_ms).fetch_optional(pool).await? {
                return Ok(TokenUse::Granted(from_row(&r)?));
            }
            let q = sql("SELECT * FROM stream_tokens WHERE sid = ?");
            let Some(r) = sqlx::query(q).bind(sid).fetch_optional(pool).await? else {
                return Ok(TokenUse::Unknown);
            };
            let t: StreamTokenRow = from_row(&r)?;
            Ok(if t.used_at_ms.is_some() { TokenUse::Used } else { TokenUse::Expired })
        }

        /// Tokens a day past their expiry are only kept for replay checks of that day.
        pub(super) async fn purge_stream_tokens(pool: &Pool, before_ms: i64) -> Result<u64, StoreError> {
            let q = sql("DELETE FROM stream_tokens WHERE expires_at_ms < ?");
            Ok(sqlx::query(q).bind(before_ms).execute(pool).await?.rows_affected())
        }
    };
}
pub(super) use access_queries;
