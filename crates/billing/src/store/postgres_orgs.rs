//! Postgres: orgs, API keys, credentials, slots, agents and the ledger.

use super::postgres::insert_usage_on;
use super::split::{charge, CreditState};
use super::{now_ms, CredentialRow, OrgRow, StoreError};
use crate::org::{Plan, StoredCredential};
use crate::UsageRecord;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use std::collections::HashMap;

pub(super) async fn upsert_plan(pool: &PgPool, p: &Plan) -> Result<(), StoreError> {
    let allowed = p.allowed_models.as_ref().map(|v| serde_json::to_string(v).unwrap_or_else(|_| "[]".into()));
    sqlx::query(
        "INSERT INTO plans (id, monthly_credit_micros, byok_allowed, allowed_models, byok_markup_bps, platform_fee_micros_per_minute, max_concurrent_calls) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET monthly_credit_micros = excluded.monthly_credit_micros, byok_allowed = excluded.byok_allowed,
           allowed_models = excluded.allowed_models, byok_markup_bps = excluded.byok_markup_bps,
           platform_fee_micros_per_minute = excluded.platform_fee_micros_per_minute,
           max_concurrent_calls = excluded.max_concurrent_calls",
    )
    .bind(&p.id)
    .bind(p.monthly_credit_micros)
    .bind(p.byok_allowed)
    .bind(allowed)
    .bind(p.byok_markup_bps)
    .bind(p.platform_fee_micros_per_minute)
    .bind(p.max_concurrent_calls)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn plan(pool: &PgPool, id: &str) -> Result<Option<Plan>, StoreError> {
    let Some(r) = sqlx::query("SELECT * FROM plans WHERE id = $1").bind(id).fetch_optional(pool).await? else {
        return Ok(None);
    };
    let allowed: Option<String> = r.try_get("allowed_models")?;
    let allowed_models = match allowed {
        Some(s) => {
            Some(serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("plan {id} allowed_models: {e}")))?)
        }
        None => None,
    };
    Ok(Some(Plan {
        id: r.try_get("id")?,
        monthly_credit_micros: r.try_get("monthly_credit_micros")?,
        byok_allowed: r.try_get("byok_allowed")?,
        allowed_models,
        byok_markup_bps: r.try_get("byok_markup_bps")?,
        platform_fee_micros_per_minute: r.try_get("platform_fee_micros_per_minute")?,
        max_concurrent_calls: r.try_get("max_concurrent_calls")?,
    }))
}

fn org_from_row(r: &PgRow) -> Result<OrgRow, StoreError> {
    Ok(OrgRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        plan_id: r.try_get("plan_id")?,
        parent_org_id: r.try_get("parent_org_id")?,
        wallet_micros: r.try_get("wallet_micros")?,
        credits_used_micros: r.try_get("credits_used_micros")?,
        credits_period: r.try_get("credits_period")?,
        use_own_keys: r.try_get("use_own_keys")?,
        wallet_deduction: r.try_get("wallet_deduction")?,
        negative_limit_micros: r.try_get("negative_limit_micros")?,
    })
}

pub(super) async fn create_org(pool: &PgPool, o: &OrgRow, key_hash: &str, prefix: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO orgs (id, name, plan_id, parent_org_id, wallet_micros, credits_used_micros, credits_period, use_own_keys,
            wallet_deduction, negative_limit_micros, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&o.id)
    .bind(&o.name)
    .bind(&o.plan_id)
    .bind(&o.parent_org_id)
    .bind(o.wallet_micros)
    .bind(o.credits_used_micros)
    .bind(&o.credits_period)
    .bind(o.use_own_keys)
    .bind(o.wallet_deduction)
    .bind(o.negative_limit_micros)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO api_keys (key_hash, org_id, prefix, created_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(key_hash)
        .bind(&o.id)
        .bind(prefix)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn org(pool: &PgPool, id: &str) -> Result<Option<OrgRow>, StoreError> {
    let r = sqlx::query("SELECT * FROM orgs WHERE id = $1").bind(id).fetch_optional(pool).await?;
    r.as_ref().map(org_from_row).transpose()
}

pub(super) async fn orgs(pool: &PgPool) -> Result<Vec<OrgRow>, StoreError> {
    let rows = sqlx::query("SELECT * FROM orgs ORDER BY name, id").fetch_all(pool).await?;
    rows.iter().map(org_from_row).collect()
}

pub(super) async fn plan_ids(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT id FROM plans ORDER BY id").fetch_all(pool).await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

pub(super) async fn org_by_key_hash(pool: &PgPool, hash: &str) -> Result<Option<OrgRow>, StoreError> {
    let r = sqlx::query("SELECT o.* FROM orgs o JOIN api_keys k ON k.org_id = o.id WHERE k.key_hash = $1")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    r.as_ref().map(org_from_row).transpose()
}

pub(super) async fn update_org(pool: &PgPool, o: &OrgRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE orgs SET name = $1, plan_id = $2, use_own_keys = $3, wallet_deduction = $4, negative_limit_micros = $5 WHERE id = $6",
    )
    .bind(&o.name)
    .bind(&o.plan_id)
    .bind(o.use_own_keys)
    .bind(o.wallet_deduction)
    .bind(o.negative_limit_micros)
    .bind(&o.id)
    .execute(pool)
    .await?;
    Ok(())
}

/// `RowNotFound` when the org does not exist (nothing is written then).
pub(super) async fn add_wallet(pool: &PgPool, org_id: &str, amount: i64, reference: &str) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    let bal: i64 =
        sqlx::query_scalar("UPDATE orgs SET wallet_micros = wallet_micros + $1 WHERE id = $2 RETURNING wallet_micros")
            .bind(amount)
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO wallet_tx (org_id, amount_micros, kind, ref, created_at_ms) VALUES ($1, $2, 'topup', $3, $4)",
    )
    .bind(org_id)
    .bind(amount)
    .bind(reference)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(bal)
}

pub(super) async fn put_credential(pool: &PgPool, c: &CredentialRow) -> Result<String, StoreError> {
    let id: String = sqlx::query_scalar(
        "INSERT INTO credentials (id, org_id, provider, name, sealed, last4, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (org_id, provider, name) DO UPDATE SET sealed = excluded.sealed, last4 = excluded.last4
         RETURNING id",
    )
    .bind(&c.id)
    .bind(&c.org_id)
    .bind(&c.provider)
    .bind(&c.name)
    .bind(&c.sealed)
    .bind(&c.last4)
    .bind(now_ms())
    .fetch_one(pool)
    .await?;
    Ok(id)
}

pub(super) async fn credentials(pool: &PgPool, org_id: &str) -> Result<Vec<StoredCredential>, StoreError> {
    let rows = sqlx::query("SELECT * FROM credentials WHERE org_id = $1 ORDER BY created_at_ms, id COLLATE \"C\"")
        .bind(org_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredCredential {
                id: r.try_get("id")?,
                org_id: r.try_get("org_id")?,
                provider: r.try_get("provider")?,
                name: r.try_get("name")?,
                last4: r.try_get("last4")?,
                sealed: r.try_get("sealed")?,
            })
        })
        .collect()
}

pub(super) async fn delete_credential(pool: &PgPool, org_id: &str, id: &str) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query("DELETE FROM credentials WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM slots WHERE org_id = $1 AND credential_id = $2")
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

pub(super) async fn set_slot(pool: &PgPool, org_id: &str, service: &str, cred: Option<&str>) -> Result<(), StoreError> {
    match cred {
        Some(c) => {
            sqlx::query(
                "INSERT INTO slots (org_id, service, credential_id) VALUES ($1, $2, $3)
                 ON CONFLICT (org_id, service) DO UPDATE SET credential_id = excluded.credential_id",
            )
            .bind(org_id)
            .bind(service)
            .bind(c)
            .execute(pool)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM slots WHERE org_id = $1 AND service = $2")
                .bind(org_id)
                .bind(service)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

pub(super) async fn slots(pool: &PgPool, org_id: &str) -> Result<HashMap<String, String>, StoreError> {
    let rows =
        sqlx::query("SELECT service, credential_id FROM slots WHERE org_id = $1").bind(org_id).fetch_all(pool).await?;
    rows.iter().map(|r| Ok((r.try_get("service")?, r.try_get("credential_id")?))).collect()
}

pub(super) async fn create_agent(pool: &PgPool, id: &str, org_id: &str, spec: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO agents (id, org_id, spec_json, created_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(org_id)
        .bind(spec)
        .bind(now_ms())
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn agents(pool: &PgPool, org_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query("SELECT id, spec_json FROM agents WHERE org_id = $1 ORDER BY created_at_ms, id")
        .bind(org_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("spec_json")?))).collect()
}

pub(super) async fn update_agent(pool: &PgPool, id: &str, org_id: &str, spec: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE agents SET spec_json = $1 WHERE id = $2 AND org_id = $3")
        .bind(spec)
        .bind(id)
        .bind(org_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn agent(pool: &PgPool, id: &str) -> Result<Option<(String, String)>, StoreError> {
    let r = sqlx::query("SELECT org_id, spec_json FROM agents WHERE id = $1").bind(id).fetch_optional(pool).await?;
    r.map(|r| Ok((r.try_get("org_id")?, r.try_get("spec_json")?))).transpose()
}

/// Charge `payer` for `rec` in one transaction. The payer's org row is locked first
/// (`FOR UPDATE`), so settles on one org from any node run one after another and each reads
/// the credit use the previous one wrote. The insert of the record's own key is the replay
/// check: a key already written (even by a concurrent settle for another payer, which the
/// unique index makes us wait for) rolls everything back and charges nothing.
/// Settle `recs` in order, in one transaction: one commit for a whole checkpoint.
pub(super) async fn settle_all(
    pool: &PgPool,
    payer: &str,
    recs: &[UsageRecord],
) -> Result<Vec<UsageRecord>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut out = Vec::new();
    for rec in recs {
        out.extend(settle_in(&mut tx, payer, rec).await?);
    }
    tx.commit().await?;
    Ok(out)
}

async fn settle_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    payer: &str,
    rec: &UsageRecord,
) -> Result<Vec<UsageRecord>, StoreError> {
    let org = sqlx::query(
        "SELECT o.credits_used_micros, o.credits_period, p.monthly_credit_micros
         FROM orgs o JOIN plans p ON p.id = o.plan_id WHERE o.id = $1 FOR UPDATE OF o",
    )
    .bind(payer)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(org) = org else {
        // No such org (the store has no orgs yet): record only, charge nobody.
        let fresh = insert_usage_on(&mut **tx, rec).await?;
        return Ok(if fresh { vec![rec.clone()] } else { Vec::new() });
    };
    let (used, period, allowance): (i64, String, i64) = (org.try_get(0)?, org.try_get(1)?, org.try_get(2)?);
    let c = charge(rec, CreditState { used_micros: used, period: &period, allowance_micros: allowance });
    for (i, r) in c.records.iter().enumerate() {
        // A replay: nothing was written for it, and nothing is charged.
        if !insert_usage_on(&mut **tx, r).await? && i == 0 {
            return Ok(Vec::new());
        }
    }
    sqlx::query(
        "UPDATE orgs SET credits_used_micros = $1, credits_period = $2, wallet_micros = wallet_micros - $3 WHERE id = $4",
    )
    .bind(c.credits_used_micros)
    .bind(&c.credits_period)
    .bind(c.from_wallet)
    .bind(payer)
    .execute(&mut **tx)
    .await?;
    if c.from_wallet != 0 {
        sqlx::query(
            "INSERT INTO wallet_tx (org_id, amount_micros, kind, ref, created_at_ms) VALUES ($1, $2, 'usage', $3, $4)",
        )
        .bind(payer)
        .bind(-c.from_wallet)
        .bind(rec.key())
        .bind(rec.created_at_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(c.records)
}
