//! Orgs and what they own: plans, API keys, provider credentials (sealed by the vault before
//! they get here), the slots choosing a credential per service, and agents. Each query is
//! written once and compiled for both backends by [`org_queries!`].

/// The org queries over one backend (see `session_queries!` for what they expect in scope).
macro_rules! org_queries {
    () => {
        use super::{sql, Pool};
        use crate::store::from_row;
        use crate::org::{Plan, StoredCredential};
        use crate::store::{now_ms, CredentialRow, OrgRow, StoreError};
        use sqlx::Row;
        use std::collections::HashMap;

        pub(super) async fn upsert_plan(pool: &Pool, p: &Plan) -> Result<(), StoreError> {
            let allowed = p.allowed_models.as_ref().map(|v| serde_json::to_string(v).unwrap_or_else(|_| "[]".into()));
            let q = sql(
                "INSERT INTO plans (id, monthly_credit_micros, byok_allowed, allowed_models, byok_markup_bps, platform_fee_micros_per_minute, max_concurrent_calls) VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET monthly_credit_micros = excluded.monthly_credit_micros, byok_allowed = excluded.byok_allowed,
                   allowed_models = excluded.allowed_models, byok_markup_bps = excluded.byok_markup_bps,
                   platform_fee_micros_per_minute = excluded.platform_fee_micros_per_minute,
                   max_concurrent_calls = excluded.max_concurrent_calls",
            );
            sqlx::query(q)
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

        pub(super) async fn plan(pool: &Pool, id: &str) -> Result<Option<Plan>, StoreError> {
            let q = sql("SELECT * FROM plans WHERE id = ?");
            let Some(r) = sqlx::query(q).bind(id).fetch_optional(pool).await? else {
                return Ok(None);
            };
            let allowed: Option<String> = r.try_get("allowed_models")?;
            let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("plan {id} allowed_models: {e}"));
            let allowed_models = allowed.map(|s| serde_json::from_str(&s).map_err(corrupt)).transpose()?;
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

        pub(super) async fn plan_ids(pool: &Pool) -> Result<Vec<String>, StoreError> {
            let rows = sqlx::query(sql("SELECT id FROM plans ORDER BY id")).fetch_all(pool).await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        }

        /// The org and its first API key, together or not at all.
        pub(super) async fn create_org(
            pool: &Pool,
            o: &OrgRow,
            key_hash: &str,
            prefix: &str,
        ) -> Result<(), StoreError> {
            let mut tx = pool.begin().await?;
            let q = sql(
                "INSERT INTO orgs (id, name, plan_id, parent_org_id, wallet_micros, credits_used_micros, credits_period, use_own_keys,
                    wallet_deduction, negative_limit_micros, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            );
            sqlx::query(q)
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
            let q = sql("INSERT INTO api_keys (key_hash, org_id, prefix, created_at_ms) VALUES (?, ?, ?, ?)");
            sqlx::query(q).bind(key_hash).bind(&o.id).bind(prefix).bind(now_ms()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        }

        pub(super) async fn org(pool: &Pool, id: &str) -> Result<Option<OrgRow>, StoreError> {
            let r = sqlx::query(sql("SELECT * FROM orgs WHERE id = ?")).bind(id).fetch_optional(pool).await?;
            r.as_ref().map(from_row).transpose()
        }

        pub(super) async fn orgs(pool: &Pool) -> Result<Vec<OrgRow>, StoreError> {
            let rows = sqlx::query(sql("SELECT * FROM orgs ORDER BY name, id")).fetch_all(pool).await?;
            rows.iter().map(from_row).collect()
        }

        pub(super) async fn org_by_key_hash(pool: &Pool, hash: &str) -> Result<Option<OrgRow>, StoreError> {
            let q = sql("SELECT o.* FROM orgs o JOIN api_keys k ON k.org_id = o.id WHERE k.key_hash = ?");
            let r = sqlx::query(q).bind(hash).fetch_optional(pool).await?;
            r.as_ref().map(from_row).transpose()
        }

        pub(super) async fn update_org(pool: &Pool, o: &OrgRow) -> Result<(), StoreError> {
            let q = sql(
                "UPDATE orgs SET name = ?, plan_id = ?, use_own_keys = ?, wallet_deduction = ?, negative_limit_micros = ? WHERE id = ?",
            );
            sqlx::query(q)
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

        pub(super) async fn put_credential(pool: &Pool, c: &CredentialRow) -> Result<String, StoreError> {
            let q = sql(
                "INSERT INTO credentials (id, org_id, provider, name, sealed, last4, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (org_id, provider, name) DO UPDATE SET sealed = excluded.sealed, last4 = excluded.last4
                 RETURNING id",
            );
            let id: String = sqlx::query_scalar(q)
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

        /// Oldest first; ids sort by byte (`COLLATE "C"`) on both backends.
        pub(super) async fn credentials(pool: &Pool, org_id: &str) -> Result<Vec<StoredCredential>, StoreError> {
            let q = sql("SELECT * FROM credentials WHERE org_id = ? ORDER BY created_at_ms, id COLLATE \"C\"");
            let rows = sqlx::query(q).bind(org_id).fetch_all(pool).await?;
            rows.iter().map(from_row).collect()
        }

        pub(super) async fn all_credentials(pool: &Pool) -> Result<Vec<StoredCredential>, StoreError> {
            let rows = sqlx::query(sql("SELECT * FROM credentials ORDER BY id")).fetch_all(pool).await?;
            rows.iter().map(from_row).collect()
        }

        pub(super) async fn reseal_credential(pool: &Pool, id: &str, sealed: &str) -> Result<(), StoreError> {
            let q = sql("UPDATE credentials SET sealed = ? WHERE id = ?");
            sqlx::query(q).bind(sealed).bind(id).execute(pool).await?;
            Ok(())
        }

        /// The credential and any slot pointing at it go together.
        pub(super) async fn delete_credential(pool: &Pool, org_id: &str, id: &str) -> Result<bool, StoreError> {
            let mut tx = pool.begin().await?;
            let q = sql("DELETE FROM credentials WHERE org_id = ? AND id = ?");
            let n = sqlx::query(q).bind(org_id).bind(id).execute(&mut *tx).await?.rows_affected();
            let q = sql("DELETE FROM slots WHERE org_id = ? AND credential_id = ?");
            sqlx::query(q).bind(org_id).bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(n == 1)
        }

        pub(super) async fn set_slot(
            pool: &Pool,
            org_id: &str,
            service: &str,
            cred: Option<&str>,
        ) -> Result<(), StoreError> {
            match cred {
                Some(c) => {
                    let q = sql(
                        "INSERT INTO slots (org_id, service, credential_id) VALUES (?, ?, ?)
                         ON CONFLICT (org_id, service) DO UPDATE SET credential_id = excluded.credential_id",
                    );
                    sqlx::query(q).bind(org_id).bind(service).bind(c).execute(pool).await?;
                }
                None => {
                    let q = sql("DELETE FROM slots WHERE org_id = ? AND service = ?");
                    sqlx::query(q).bind(org_id).bind(service).execute(pool).await?;
                }
            }
            Ok(())
        }

        pub(super) async fn slots(pool: &Pool, org_id: &str) -> Result<HashMap<String, String>, StoreError> {
            let q = sql("SELECT service, credential_id FROM slots WHERE org_id = ?");
            let rows = sqlx::query(q).bind(org_id).fetch_all(pool).await?;
            rows.iter().map(|r| Ok((r.try_get("service")?, r.try_get("credential_id")?))).collect()
        }

        pub(super) async fn create_agent(pool: &Pool, id: &str, org_id: &str, spec: &str) -> Result<(), StoreError> {
            let q = sql("INSERT INTO agents (id, org_id, spec_json, created_at_ms) VALUES (?, ?, ?, ?)");
            sqlx::query(q).bind(id).bind(org_id).bind(spec).bind(now_ms()).execute(pool).await?;
            Ok(())
        }

        pub(super) async fn agent(pool: &Pool, id: &str) -> Result<Option<(String, String)>, StoreError> {
            let q = sql("SELECT org_id, spec_json FROM agents WHERE id = ?");
            let r = sqlx::query(q).bind(id).fetch_optional(pool).await?;
            r.map(|r| Ok((r.try_get("org_id")?, r.try_get("spec_json")?))).transpose()
        }

        pub(super) async fn agents(pool: &Pool, org_id: &str) -> Result<Vec<(String, String)>, StoreError> {
            let q = sql("SELECT id, spec_json FROM agents WHERE org_id = ? ORDER BY created_at_ms, id");
            let rows = sqlx::query(q).bind(org_id).fetch_all(pool).await?;
            rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("spec_json")?))).collect()
        }

        pub(super) async fn update_agent(pool: &Pool, id: &str, org_id: &str, spec: &str) -> Result<bool, StoreError> {
            let q = sql("UPDATE agents SET spec_json = ? WHERE id = ? AND org_id = ?");
            Ok(sqlx::query(q).bind(spec).bind(id).bind(org_id).execute(pool).await?.rows_affected() == 1)
        }
    };
}
pub(super) use org_queries;
