//! The ledger: settling usage against plan credits and the wallet, wallet top-ups, and the
//! holds running sessions place on their payer's funds. Each query is written once and
//! compiled for both backends by [`ledger_queries!`]; how a settle locks its payer is the
//! backend's `begin_settle`.

/// The ledger queries over one backend (see `session_queries!` for what they expect in scope;
/// these also use the backend's `begin_settle`).
macro_rules! ledger_queries {
    () => {
        use super::sessions::insert_usage_on;
        use super::transcript::insert_line;
        use crate::store::TranscriptLine;
        use super::{begin_settle, sql, Db, Pool};
        use crate::store::split::{charge, CreditState};
        use crate::store::{now_ms, period_of, Checkpoint, FundsCheck, FundsVerdict, Settled, StoreError};
        use crate::UsageRecord;
        use sqlx::Row;

        /// One checkpoint in its own transaction (a call's, or an API request's with no lines).
        pub(super) async fn settle_one(
            pool: &Pool,
            payer: &str,
            recs: &[UsageRecord],
            session_id: &str,
            lines: &[TranscriptLine],
        ) -> Result<Vec<UsageRecord>, StoreError> {
            let cp = Checkpoint { payer_org_id: payer, session_id, records: recs, lines, funds: None };
            let mut settled = settle_checkpoints(pool, std::slice::from_ref(&cp)).await?;
            Ok(settled.pop().map(|s| s.records).unwrap_or_default())
        }

        /// Settle each checkpoint's records in order, keep its transcript lines, then run its
        /// funds check: all in one transaction, one commit for the batch. `begin_settle`
        /// serialises settles on the same payers, so within a checkpoint the payer's credit use
        /// is read once, carried from record to record in memory, and written once.
        pub(super) async fn settle_checkpoints(
            pool: &Pool,
            batch: &[Checkpoint<'_>],
        ) -> Result<Vec<Settled>, StoreError> {
            let mut payers: Vec<&str> = batch.iter().map(|c| c.payer_org_id).collect();
            payers.sort_unstable();
            payers.dedup();
            let mut tx = begin_settle(pool, &payers).await?;
            let mut out = Vec::with_capacity(batch.len());
            for cp in batch {
                let records = settle_records(&mut tx, cp.payer_org_id, cp.records).await?;
                for line in cp.lines {
                    insert_line(&mut *tx, cp.session_id, line).await?;
                }
                let funds = match cp.funds {
                    Some(check) => check_funds_on(&mut tx, cp, check).await?,
                    None => FundsVerdict::Unchecked,
                };
                out.push(Settled { records, funds });
            }
            tx.commit().await?;
            Ok(out)
        }

        async fn settle_records(
            tx: &mut sqlx::Transaction<'_, Db>,
            payer: &str,
            recs: &[UsageRecord],
        ) -> Result<Vec<UsageRecord>, StoreError> {
            let mut out = Vec::new();
            let q = sql(
                "SELECT o.credits_used_micros, o.credits_period, p.monthly_credit_micros
                 FROM orgs o JOIN plans p ON p.id = o.plan_id WHERE o.id = ?",
            );
            let org = if recs.is_empty() { None } else { sqlx::query(q).bind(payer).fetch_optional(&mut **tx).await? };
            let Some(org) = org else {
                // No such org (the store has no orgs yet): record only, charge nobody.
                for rec in recs {
                    if insert_usage_on(&mut **tx, rec).await? {
                        out.push(rec.clone());
                    }
                }
                return Ok(out);
            };
            let mut payer_state = PayerState {
                used_micros: org.try_get(0)?,
                period: org.try_get(1)?,
                allowance_micros: org.try_get(2)?,
                from_wallet: 0,
            };
            for rec in recs {
                out.extend(settle_in(tx, payer, rec, &mut payer_state).await?);
            }
            if payer_state.from_wallet != 0 || !out.is_empty() {
                let q = sql(
                    "UPDATE orgs SET credits_used_micros = ?, credits_period = ?, wallet_micros = wallet_micros - ? WHERE id = ?",
                );
                sqlx::query(q)
                    .bind(payer_state.used_micros)
                    .bind(&payer_state.period)
                    .bind(payer_state.from_wallet)
                    .bind(payer)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(out)
        }

        /// The checkpoint's funds check, after its records are charged: the same one-statement
        /// read as [`funds`], and the hold extended when enough is left.
        async fn check_funds_on(
            tx: &mut sqlx::Transaction<'_, Db>,
            cp: &Checkpoint<'_>,
            check: FundsCheck,
        ) -> Result<FundsVerdict, StoreError> {
            let row: Option<crate::store::FundsRow> = sqlx::query_as(sql(FUNDS))
                .bind(Some(cp.session_id))
                .bind(cp.payer_org_id)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(funds) = row.as_ref().and_then(crate::store::FundsRow::funds) else {
                return Ok(FundsVerdict::Unchecked);
            };
            if funds.available() < check.reserve_micros {
                return Ok(FundsVerdict::Low { available_micros: funds.available() });
            }
            upsert_hold(&mut **tx, cp.session_id, cp.payer_org_id, check.hold_micros).await?;
            Ok(FundsVerdict::Held)
        }

        /// The payer's credit use as the checkpoint's records so far leave it, and what they
        /// took from the wallet.
        struct PayerState {
            used_micros: i64,
            period: String,
            allowance_micros: i64,
            from_wallet: i64,
        }

        /// Charge the payer for `rec` against `state`. The insert of the record's own key is the
        /// replay check: a key already written (even by a concurrent settle for another payer,
        /// which the unique index makes us wait for) charges nothing.
        async fn settle_in(
            tx: &mut sqlx::Transaction<'_, Db>,
            payer: &str,
            rec: &UsageRecord,
            state: &mut PayerState,
        ) -> Result<Vec<UsageRecord>, StoreError> {
            let credit =
                CreditState { used_micros: state.used_micros, period: &state.period, allowance_micros: state.allowance_micros };
            let c = charge(rec, credit);
            for (i, r) in c.records.iter().enumerate() {
                // A replay: nothing was written for it, and nothing is charged.
                if !insert_usage_on(&mut **tx, r).await? && i == 0 {
                    return Ok(Vec::new());
                }
            }
            state.used_micros = c.credits_used_micros;
            state.period = c.credits_period;
            state.from_wallet += c.from_wallet;
            if c.from_wallet != 0 {
                let q = sql(
                    "INSERT INTO wallet_tx (org_id, amount_micros, kind, ref, created_at_ms) VALUES (?, ?, 'usage', ?, ?)",
                );
                sqlx::query(q)
                    .bind(payer)
                    .bind(-c.from_wallet)
                    .bind(rec.key())
                    .bind(rec.created_at_ms)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(c.records)
        }

        /// `RowNotFound` when the org does not exist (nothing is written then).
        pub(super) async fn add_wallet(
            pool: &Pool,
            org_id: &str,
            amount: i64,
            reference: &str,
        ) -> Result<i64, StoreError> {
            let mut tx = pool.begin().await?;
            let q = sql("UPDATE orgs SET wallet_micros = wallet_micros + ? WHERE id = ? RETURNING wallet_micros");
            let bal: i64 = sqlx::query_scalar(q).bind(amount).bind(org_id).fetch_one(&mut *tx).await?;
            let q = sql(
                "INSERT INTO wallet_tx (org_id, amount_micros, kind, ref, created_at_ms) VALUES (?, ?, 'topup', ?, ?)",
            );
            sqlx::query(q).bind(org_id).bind(amount).bind(reference).bind(now_ms()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(bal)
        }

        pub(super) async fn put_hold(
            pool: &Pool,
            session_id: &str,
            org_id: &str,
            amount: i64,
        ) -> Result<(), StoreError> {
            upsert_hold(pool, session_id, org_id, amount).await
        }

        async fn upsert_hold<'e, E>(e: E, session_id: &str, org_id: &str, amount: i64) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let q = sql(
                "INSERT INTO holds (session_id, org_id, amount_micros, updated_at_ms) VALUES (?, ?, ?, ?)
                 ON CONFLICT (session_id) DO UPDATE SET amount_micros = excluded.amount_micros, updated_at_ms = excluded.updated_at_ms",
            );
            sqlx::query(q).bind(session_id).bind(org_id).bind(amount).bind(now_ms()).execute(e).await?;
            Ok(())
        }

        pub(super) async fn release_hold(pool: &Pool, session_id: &str) -> Result<(), StoreError> {
            sqlx::query(sql("DELETE FROM holds WHERE session_id = ?")).bind(session_id).execute(pool).await?;
            Ok(())
        }

        pub(super) async fn held(pool: &Pool, org_id: &str, except_session: Option<&str>) -> Result<i64, StoreError> {
            let q = sql(
                "SELECT CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) FROM holds WHERE org_id = ? AND session_id <> COALESCE(?, '')",
            );
            Ok(sqlx::query_scalar(q).bind(org_id).bind(except_session).fetch_one(pool).await?)
        }

        pub(super) async fn funds(
            pool: &Pool,
            org_id: &str,
            except_session: Option<&str>,
        ) -> Result<Option<crate::store::FundsRow>, StoreError> {
            Ok(sqlx::query_as(sql(FUNDS)).bind(except_session).bind(org_id).fetch_optional(pool).await?)
        }

        /// An org's funds in one statement; binds the session whose hold is left out, then the org.
        const FUNDS: &str = "SELECT o.plan_id, p.monthly_credit_micros, o.credits_used_micros, o.credits_period,
                o.wallet_micros, o.negative_limit_micros,
                (SELECT CAST(COALESCE(SUM(h.amount_micros), 0) AS BIGINT) FROM holds h
                 WHERE h.org_id = o.id AND h.session_id <> COALESCE(?, '')) AS held_micros
             FROM orgs o LEFT JOIN plans p ON p.id = o.plan_id WHERE o.id = ?";

        /// Check the payer's funds and place the session's hold in one transaction: the first
        /// statement locks the payer's row (Postgres) or takes the write lock (SQLite), so
        /// simultaneous starts are admitted one after another and never hold more than exists.
        pub(super) async fn place_hold(
            pool: &Pool,
            session_id: &str,
            org_id: &str,
            amount_micros: i64,
        ) -> Result<bool, StoreError> {
            let mut tx = pool.begin().await?;
            let lock = sql("UPDATE orgs SET wallet_micros = wallet_micros WHERE id = ?");
            if sqlx::query(lock).bind(org_id).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            let q = sql(
                "SELECT o.wallet_micros, o.credits_used_micros, o.credits_period, o.negative_limit_micros, p.monthly_credit_micros,
                   CAST((SELECT COALESCE(SUM(h.amount_micros), 0) FROM holds h WHERE h.org_id = o.id AND h.session_id <> ?) AS BIGINT) AS held
                 FROM orgs o JOIN plans p ON p.id = o.plan_id WHERE o.id = ?",
            );
            let r = sqlx::query(q).bind(session_id).bind(org_id).fetch_one(&mut *tx).await?;
            let period: String = r.try_get("credits_period")?;
            let used: i64 = if period == period_of(now_ms()) { r.try_get("credits_used_micros")? } else { 0 };
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
            upsert_hold(&mut *tx, session_id, org_id, amount_micros).await?;
            tx.commit().await?;
            Ok(true)
        }
    };
}
pub(super) use ledger_queries;
