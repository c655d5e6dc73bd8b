//! SQLite: orgs, API keys, credentials, slots, agents and the ledger.

use super::split::{charge, CreditState};
use super::sqlite::insert_usage_on;
use super::{now_ms, CredentialRow, OrgRow, StoreError};
use crate::org::{Plan, StoredCredential};
use crate::UsageRecord;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use std::collections::HashMap;

pub(super) async fn upsert_plan(pool: &SqlitePool, p: &Plan) -> Result<(), StoreError> {
    let allowed = p.allowed_models.as_ref().map(|v| serde_json::to_string(v).unwrap_or_else(|_| "[]".into()));
    sqlx::query(
        "INSERT INTO plans (id, monthly_credit_micros, byok_allowed, allowed_models, byok_markup_bps, platform_fee_micros_per_minute, max_concurrent_calls) VALUES (?, ?, ?, ?, ?, ?, ?)
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

pub(super) async fn plan(pool: &SqlitePool, id: &str) -> Result<Option<Plan>, StoreError> {
    let Some(r) = sqlx::query("SELECT * FROM plans WHERE id = ?").bind(id).fetch_optional(pool).await? else {
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

fn org_from_row(r: &SqliteRow) -> Result<OrgRow, StoreError> {
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

pub(super) async fn create_org(pool: &SqlitePool, o: &OrgRow, key_hash: &str, prefix: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO orgs (id, name, plan_id, parent_org_id, wallet_micros, credits_used_micros, credits_period, use_own_keys,
            wallet_deduction, negative_limit_micros, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    sqlx::query("INSERT INTO api_keys (key_hash, org_id, prefix, created_at_ms) VALUES (?, ?, ?, ?)")
        .bind(key_hash)
        .bind(&o.id)
        .bind(prefix)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn org(pool: &SqlitePool, id: &str) -> Result<Option<OrgRow>, StoreError> {
    let r = sqlx::query("SELECT * FROM orgs WHERE id = ?").bind(id).fetch_optional(pool).await?;
    r.as_ref().map(org_from_row).transpose()
}

pub(super) async fn orgs(pool: &SqlitePool) -> Result<Vec<OrgRow>, StoreError> {
    let rows = sqlx::query("SELECT * FROM orgs ORDER BY name, id").fetch_all(pool).await?;
    rows.iter().map(org_from_row).collect()
}

pub(super) async fn plan_ids(pool: &SqlitePool) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT id FROM plans ORDER BY id").fetch_all(pool).await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

pub(super) async fn org_by_key_hash(pool: &SqlitePool, hash: &str) -> Result<Option<OrgRow>, StoreError> {
    let r = sqlx::query("SELECT o.* FROM orgs o JOIN api_keys k ON k.org_id = o.id WHERE k.key_hash = ?")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    r.as_ref().map(org_from_row).transpose()
}

pub(super) async fn update_org(pool: &SqlitePool, o: &OrgRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE orgs SET name = ?, plan_id = ?, use_own_keys = ?, wallet_deduction = ?, negative_limit_micros = ? WHERE id = ?",
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

pub(super) async fn add_wallet(
    pool: &SqlitePool,
    org_id: &str,
    amount: i64,
    reference: &str,
) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE orgs SET wallet_micros = wallet_micros + ? WHERE id = ?")
        .bind(amount)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO wallet_tx (org_id, amount_micros, kind, ref, created_at_ms) VALUES (?, ?, 'topup', ?, ?)")
        .bind(org_id)
        .bind(amount)
        .bind(reference)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    let bal: i64 =
        sqlx::query_scalar("SELECT wallet_micros FROM orgs WHERE id = ?").bind(org_id).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(bal)
}

pub(super) async fn put_credential(pool: &SqlitePool, c: &CredentialRow) -> Result<String, StoreError> {
    let id: String = sqlx::query_scalar(
        "INSERT INTO credentials (id, org_id, provider, name, sealed, last4, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
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

pub(super) async fn credentials(pool: &SqlitePool, org_id: &str) -> Result<Vec<StoredCredential>, StoreError> {
    let rows = sqlx::query("SELECT * FROM credentials WHERE org_id = ? ORDER BY created_at_ms, id")
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

pub(super) async fn delete_credential(pool: &SqlitePool, org_id: &str, id: &str) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query("DELETE FROM credentials WHERE org_id = ? AND id = ?")
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM slots WHERE org_id = ? AND credential_id = ?")
        .bind(org_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n == 1)
}

pub(super) async fn set_slot(
    pool: &SqlitePool,
    org_id: &str,
    service: &str,
    cred: Option<&str>,
) -> Result<(), StoreError> {
    match cred {
        Some(c) => {
            sqlx::query(
                "INSERT INTO slots (org_id, service, credential_id) VALUES (?, ?, ?)
                 ON CONFLICT (org_id, service) DO UPDATE SET credential_id = excluded.credential_id",
            )
            .bind(org_id)
            .bind(service)
            .bind(c)
            .execute(pool)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM slots WHERE org_id = ? AND service = ?")
                .bind(org_id)
                .bind(service)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

pub(super) async fn slots(pool: &SqlitePool, org_id: &str) -> Result<HashMap<String, String>, StoreError> {
    let rows =
        sqlx::query("SELECT service, credential_id FROM slots WHERE org_id = ?").bind(org_id).fetch_all(pool).await?;
    rows.iter().map(|r| Ok((r.try_get("service")?, r.try_get("credential_id")?))).collect()
}

pub(super) async fn create_agent(pool: &SqlitePool, id: &str, org_id: &str, spec: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO agents (id, org_id, spec_json, created_at_ms) VALUES (?, ?, ?, ?)")
        .bind(id)
        .bind(org_id)
        .bind(spec)
        .bind(now_ms())
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn agents(pool: &SqlitePool, org_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query("SELECT id, spec_json FROM agents WHERE org_id = ? ORDER BY created_at_ms, id")
        .bind(org_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("spec_json")?))).collect()
}

pub(super) async fn update_agent(pool: &SqlitePool, id: &str, org_id: &str, spec: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE agents SET spec_json = ? WHERE id = ? AND org_id = ?")
        .bind(spec)
        .bind(id)
        .bind(org_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn agent(pool: &SqlitePool, id: &str) -> Result<Option<(String, String)>, StoreError> {
    let r = sqlx::query("SELECT org_id, spec_json FROM agents WHERE id = ?").bind(id).fetch_optional(pool).await?;
    r.map(|r| Ok((r.try_get("org_id")?, r.try_get("spec_json")?))).transpose()
}

/// Split `amount` of a record between plan credits and the wallet and write it, atomically.
/// Settle `recs` in order, in one transaction: one commit for a whole checkpoint.
pub(super) async fn settle_all(
    pool: &SqlitePool,
    payer: &str,
    recs: &[UsageRecord],
) -> Result<Vec<UsageRecord>, StoreError> {
    // IMMEDIATE takes the write lock up front: concurrent settles wait (busy timeout) instead
    // of failing when a read transaction tries to upgrade.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = Vec::new();
    for rec in recs {
        out.extend(settle_in(&mut tx, payer, rec).await?);
    }
    tx.commit().await?;
    Ok(out)
}

async fn settle_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    payer: &str,
    rec: &UsageRecord,
) -> Result<Vec<UsageRecord>, StoreError> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM usage_records WHERE session_id = ? AND line = ? AND seq = ?")
            .bind(&rec.session_id)
            .bind(&rec.line)
            .bind(i64::from(rec.seq))
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_some() {
        return Ok(Vec::new());
    }
    let org = sqlx::query("SELECT o.credits_used_micros, o.credits_period, p.monthly_credit_micros FROM orgs o JOIN plans p ON p.id = o.plan_id WHERE o.id = ?")
        .bind(payer)
        .fetch_optional(&mut **tx)
        .await?;
    let (used, period, allowance): (i64, String, i64) = match org {
        Some(r) => (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?),
        // No such org (the store has no orgs yet): record only, charge nobody.
        None => {
            insert_usage_on(&mut **tx, rec).await?;
            return Ok(vec![rec.clone()]);
        }
    };
    let c = charge(rec, CreditState { used_micros: used, period: &period, allowance_micros: allowance });
    for r in &c.records {
        insert_usage_on(&mut **tx, r).await?;
    }
    sqlx::query(
        "UPDATE orgs SET credits_used_micros = ?, credits_period = ?, wallet_micros = wallet_micros - ? WHERE id = ?",
    )
    .bind(c.credits_used_micros)
    .bind(&c.credits_period)
    .bind(c.from_wallet)
    .bind(payer)
    .execute(&mut **tx)
    .await?;
    if c.from_wallet != 0 {
        sqlx::query(
            "INSERT INTO wallet_tx (org_id, amount_micros, kind, ref, created_at_ms) VALUES (?, ?, 'usage', ?, ?)",
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
