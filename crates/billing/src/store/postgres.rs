//! Postgres: the shared store for several nodes. Sessions and usage here; orgs and the ledger
//! in `postgres_orgs`, change notifications in `postgres_notify`.

use super::postgres_orgs as orgs;
use super::{CredentialRow, OrgRow, SessionRow, Store, StoreError};
use crate::org::{Plan, StoredCredential};
use crate::{BilledTo, MicroUsd, Service, UsageRecord, UsageUnit};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use tokio::sync::mpsc;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per node: settles hold one for a short locked transaction each.
const POOL_SIZE: u32 = 8;

/// The multi-node store: every node points at one Postgres database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect (`postgres://…` or `postgresql://…`) and run the migrations. An unreachable
    /// server is reported within seconds, naming its address (never the password) and the
    /// cause, not a pool timeout.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await;
        let pool = match pool {
            Ok(p) => p,
            Err(sqlx::Error::PoolTimedOut) => return Err(unreachable(url).await),
            Err(e) => return Err(e.into()),
        };
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

/// Why the server at `url` cannot be reached: one direct connection attempt tells the cause
/// the pool's timeout hides.
async fn unreachable(url: &str) -> StoreError {
    use sqlx::Connection;
    let addr = url::Url::parse(url)
        .ok()
        .map(|u| format!("{}:{}", u.host_str().unwrap_or("?"), u.port().unwrap_or(5432)))
        .unwrap_or_else(|| "the configured address".into());
    let attempt = tokio::time::timeout(std::time::Duration::from_secs(5), sqlx::PgConnection::connect(url)).await;
    let cause = match attempt {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => "connections time out under load".to_string(),
        Err(_) => "no answer within 5 s".to_string(),
    };
    StoreError::Unreachable { addr, cause }
}

pub(super) fn session_from_row(r: &PgRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        session_id: r.try_get("session_id")?,
        call_sid: r.try_get("call_sid")?,
        org_id: r.try_get("org_id")?,
        gateway: r.try_get("gateway")?,
        status: r.try_get("status")?,
        started_at_ms: r.try_get("started_at_ms")?,
        ended_at_ms: r.try_get("ended_at_ms")?,
        end_reason: r.try_get("end_reason")?,
        plan_json: r.try_get("plan_json")?,
    })
}

/// `Ok(false)` when the record's key already exists.
pub(super) async fn insert_usage_on<'e, E>(e: E, rec: &UsageRecord) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let res = sqlx::query(
        "INSERT INTO usage_records (session_id, line, seq, service, provider, model, quantity, quantity_atoms, unit,
            billed_to, amount_micros, estimated, credential_id, created_at_ms, list_micros, org_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (session_id, line, seq) DO NOTHING",
    )
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

fn usage_from_row(r: &PgRow) -> Result<UsageRecord, StoreError> {
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
        billed_to: BilledTo::parse(&billed_to).ok_or_else(|| StoreError::Corrupt(format!("billed_to {billed_to}")))?,
        amount_micros: MicroUsd(r.try_get("amount_micros")?),
        list_micros: MicroUsd(r.try_get("list_micros")?),
        org_id: r.try_get("org_id")?,
        estimated: r.try_get("estimated")?,
        credential_id: r.try_get("credential_id")?,
        created_at_ms: r.try_get("created_at_ms")?,
    })
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn open_session(&self, row: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (session_id, call_sid, org_id, gateway, status, started_at_ms, ended_at_ms, end_reason, plan_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&row.session_id)
        .bind(&row.call_sid)
        .bind(&row.org_id)
        .bind(&row.gateway)
        .bind(&row.status)
        .bind(row.started_at_ms)
        .bind(row.ended_at_ms)
        .bind(&row.end_reason)
        .bind(&row.plan_json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn close_session(&self, session_id: &str, ended_at_ms: i64, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET status = 'closed', ended_at_ms = $1, end_reason = $2 WHERE session_id = $3 AND status = 'open'")
            .bind(ended_at_ms)
            .bind(reason)
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session(&self, session_id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn session_by_call_sid(&self, call_sid: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE call_sid = $1 ORDER BY started_at_ms DESC LIMIT 1")
            .bind(call_sid)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn insert_usage(&self, rec: &UsageRecord) -> Result<bool, StoreError> {
        insert_usage_on(&self.pool, rec).await
    }

    async fn usage_for_session(&self, session_id: &str) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM usage_records WHERE session_id = $1 ORDER BY created_at_ms, line COLLATE \"C\", seq",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(usage_from_row).collect()
    }

    async fn close_abandoned(&self) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM holds WHERE session_id IN (SELECT session_id FROM sessions WHERE status = 'open')")
            .execute(&self.pool)
            .await?;
        let res = sqlx::query(
            "UPDATE sessions SET status = 'closed', end_reason = 'abandoned',
               ended_at_ms = COALESCE((SELECT MAX(created_at_ms) FROM usage_records u WHERE u.session_id = sessions.session_id), started_at_ms)
             WHERE status = 'open'",
        )
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected())
    }

    async fn settle(&self, payer_org_id: &str, rec: &UsageRecord) -> Result<Vec<UsageRecord>, StoreError> {
        orgs::settle_all(&self.pool, payer_org_id, std::slice::from_ref(rec)).await
    }

    async fn settle_all(&self, payer_org_id: &str, recs: &[UsageRecord]) -> Result<Vec<UsageRecord>, StoreError> {
        orgs::settle_all(&self.pool, payer_org_id, recs).await
    }

    async fn upsert_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        orgs::upsert_plan(&self.pool, plan).await
    }

    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        orgs::plan(&self.pool, id).await
    }

    async fn plan_ids(&self) -> Result<Vec<String>, StoreError> {
        orgs::plan_ids(&self.pool).await
    }

    async fn create_org(&self, org: &OrgRow, key_hash: &str, key_prefix: &str) -> Result<(), StoreError> {
        orgs::create_org(&self.pool, org, key_hash, key_prefix).await
    }

    async fn org(&self, id: &str) -> Result<Option<OrgRow>, StoreError> {
        orgs::org(&self.pool, id).await
    }

    async fn orgs(&self) -> Result<Vec<OrgRow>, StoreError> {
        orgs::orgs(&self.pool).await
    }

    async fn org_by_key_hash(&self, key_hash: &str) -> Result<Option<OrgRow>, StoreError> {
        orgs::org_by_key_hash(&self.pool, key_hash).await
    }

    async fn update_org(&self, org: &OrgRow) -> Result<(), StoreError> {
        orgs::update_org(&self.pool, org).await
    }

    async fn add_wallet(&self, org_id: &str, amount_micros: i64, reference: &str) -> Result<i64, StoreError> {
        orgs::add_wallet(&self.pool, org_id, amount_micros, reference).await
    }

    async fn put_credential(&self, c: &CredentialRow) -> Result<String, StoreError> {
        orgs::put_credential(&self.pool, c).await
    }

    async fn credentials(&self, org_id: &str) -> Result<Vec<StoredCredential>, StoreError> {
        orgs::credentials(&self.pool, org_id).await
    }

    async fn delete_credential(&self, org_id: &str, id: &str) -> Result<bool, StoreError> {
        orgs::delete_credential(&self.pool, org_id, id).await
    }

    async fn set_slot(&self, org_id: &str, service: &str, credential_id: Option<&str>) -> Result<(), StoreError> {
        orgs::set_slot(&self.pool, org_id, service, credential_id).await
    }

    async fn slots(&self, org_id: &str) -> Result<HashMap<String, String>, StoreError> {
        orgs::slots(&self.pool, org_id).await
    }

    async fn create_agent(&self, id: &str, org_id: &str, spec_json: &str) -> Result<(), StoreError> {
        orgs::create_agent(&self.pool, id, org_id, spec_json).await
    }

    async fn agent(&self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        orgs::agent(&self.pool, id).await
    }

    async fn agents(&self, org_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        orgs::agents(&self.pool, org_id).await
    }

    async fn update_agent(&self, id: &str, org_id: &str, spec_json: &str) -> Result<bool, StoreError> {
        orgs::update_agent(&self.pool, id, org_id, spec_json).await
    }

    async fn put_hold(&self, session_id: &str, org_id: &str, amount_micros: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO holds (session_id, org_id, amount_micros, updated_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET amount_micros = excluded.amount_micros, updated_at_ms = excluded.updated_at_ms")
            .bind(session_id)
            .bind(org_id)
            .bind(amount_micros)
            .bind(super::now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_hold(&self, session_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM holds WHERE session_id = $1").bind(session_id).execute(&self.pool).await?;
        Ok(())
    }

    async fn held(&self, org_id: &str, except_session: Option<&str>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE(SUM(amount_micros), 0)::BIGINT FROM holds WHERE org_id = $1 AND session_id <> COALESCE($2, '')").bind(org_id).bind(except_session).fetch_one(&self.pool).await?)
    }

    async fn all_credentials(&self) -> Result<Vec<crate::org::StoredCredential>, StoreError> {
        let rows = sqlx::query("SELECT id, org_id, provider, name, last4, sealed FROM credentials ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::org::StoredCredential {
                    id: r.try_get(0)?,
                    org_id: r.try_get(1)?,
                    provider: r.try_get(2)?,
                    name: r.try_get(3)?,
                    last4: r.try_get(4)?,
                    sealed: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn reseal_credential(&self, id: &str, sealed: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE credentials SET sealed = $1 WHERE id = $2")
            .bind(sealed)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn rates(&self) -> Result<crate::RateTable, StoreError> {
        let rows = sqlx::query(super::rates_sql::SELECT).fetch_all(&self.pool).await?;
        let mut table = crate::RateTable::default();
        for r in &rows {
            table.insert(super::rates_sql::rate(
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
            )?);
        }
        Ok(table)
    }

    async fn seed_rates(&self, table: &crate::RateTable) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for r in table.iter() {
            added += sqlx::query(
                "INSERT INTO rates (service, provider, model, unit, price_micros, managed, unverified) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&r.service)
            .bind(&r.provider)
            .bind(&r.model)
            .bind(r.unit.as_str())
            .bind(r.price.0)
            .bind(r.managed)
            .bind(r.unverified)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if added > 0 {
            sqlx::query("UPDATE settings SET value = value + 1 WHERE key = 'rates_version'").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn set_managed(&self, provider: &str, service: Option<&str>, managed: bool) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE rates SET managed = $1 WHERE provider = $2 AND ($3::TEXT IS NULL OR service = $3)")
            .bind(managed)
            .bind(provider)
            .bind(service)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE settings SET value = value + 1 WHERE key = 'rates_version'").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn upsert_rate(&self, r: &crate::Rate) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rates (service, provider, model, unit, price_micros, managed, unverified) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (service, provider, model, unit) DO UPDATE SET price_micros = excluded.price_micros,
               managed = excluded.managed, unverified = excluded.unverified",
        )
        .bind(&r.service)
        .bind(&r.provider)
        .bind(&r.model)
        .bind(r.unit.as_str())
        .bind(r.price.0)
        .bind(r.managed)
        .bind(r.unverified)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE settings SET value = value + 1 WHERE key = 'rates_version'").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rates_version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = 'rates_version'").fetch_one(&self.pool).await?)
    }

    async fn usage_for_org(&self, org_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM usage_records WHERE org_id = $1 AND created_at_ms >= $2 AND created_at_ms < $3 ORDER BY created_at_ms, line COLLATE \"C\", seq",
        )
        .bind(org_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(usage_from_row).collect()
    }

    async fn publish_change(&self, topic: &str) -> Result<(), StoreError> {
        super::postgres_notify::publish(&self.pool, topic).await
    }

    async fn subscribe_changes(&self) -> Result<Option<mpsc::Receiver<String>>, StoreError> {
        super::postgres_notify::subscribe(&self.pool).await.map(Some)
    }

    async fn create_number(&self, n: &super::NumberRow) -> Result<bool, StoreError> {
        super::postgres_access::create_number(&self.pool, n).await
    }

    async fn numbers(&self, org_id: &str) -> Result<Vec<super::NumberRow>, StoreError> {
        super::postgres_access::numbers(&self.pool, org_id).await
    }

    async fn delete_number(&self, org_id: &str, id: &str) -> Result<bool, StoreError> {
        super::postgres_access::delete_number(&self.pool, org_id, id).await
    }

    async fn number(&self, e164: &str) -> Result<Option<super::NumberRow>, StoreError> {
        super::postgres_access::number(&self.pool, e164).await
    }

    async fn put_stream_token(&self, t: &super::StreamTokenRow) -> Result<bool, StoreError> {
        super::postgres_access::put_stream_token(&self.pool, t).await
    }

    async fn consume_stream_token(&self, sid: &str, now_ms: i64) -> Result<super::TokenUse, StoreError> {
        super::postgres_access::consume_stream_token(&self.pool, sid, now_ms).await
    }

    async fn purge_stream_tokens(&self, before_ms: i64) -> Result<u64, StoreError> {
        super::postgres_access::purge_stream_tokens(&self.pool, before_ms).await
    }

    async fn place_hold(&self, session_id: &str, org_id: &str, amount_micros: i64) -> Result<bool, StoreError> {
        super::postgres_access::place_hold(&self.pool, session_id, org_id, amount_micros).await
    }

    async fn open_sessions(&self, org_id: &str) -> Result<i64, StoreError> {
        super::postgres_access::open_sessions(&self.pool, org_id).await
    }

    async fn list_sessions(
        &self,
        org_id: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        super::postgres_access::list_sessions(&self.pool, org_id, from_ms, to_ms, limit).await
    }
}
