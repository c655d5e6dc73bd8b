//! The rate table: the source of truth once seeded, edited by operators (managed flips, price
//! changes), each edit bumping a version nodes poll. Each query is written once and compiled
//! for both backends by [`rate_queries!`].

use super::StoreError;
use crate::{MicroUsd, Rate, RateUnit};

/// A stored rate row; its unit text must parse.
pub(super) fn rate(
    (service, provider, model, unit, price_micros, managed, unverified): (
        String,
        String,
        String,
        String,
        i64,
        bool,
        bool,
    ),
) -> Result<Rate, StoreError> {
    let unit = RateUnit::parse(&unit).ok_or_else(|| StoreError::Corrupt(format!("rate unit {unit}")))?;
    Ok(Rate { service, provider, model, unit, price: MicroUsd(price_micros), managed, unverified })
}

/// The rate queries over one backend (see `session_queries!` for what they expect in scope).
macro_rules! rate_queries {
    () => {
        use super::{sql, Db, Pool};
        use crate::store::StoreError;
        use crate::{Rate, RateTable};

        /// The version moves, and every node hears of it when the change commits.
        async fn bump_version(tx: &mut sqlx::Transaction<'_, Db>) -> Result<(), StoreError> {
            let q = sql("UPDATE settings SET value = value + 1 WHERE key = 'rates_version'");
            sqlx::query(q).execute(&mut **tx).await?;
            super::rates_changed(tx).await
        }

        pub(super) async fn rates(pool: &Pool) -> Result<RateTable, StoreError> {
            let q = sql("SELECT service, provider, model, unit, price_micros, managed, unverified FROM rates");
            let rows = sqlx::query_as(q).fetch_all(pool).await?;
            let mut table = RateTable::default();
            for r in rows {
                table.insert(crate::store::rates::rate(r)?);
            }
            Ok(table)
        }

        pub(super) async fn seed_rates(pool: &Pool, table: &RateTable) -> Result<u64, StoreError> {
            let mut tx = pool.begin().await?;
            let mut added = 0;
            for r in table.iter() {
                let q = sql(
                    "INSERT INTO rates (service, provider, model, unit, price_micros, managed, unverified) VALUES (?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT DO NOTHING",
                );
                added += bind_rate(sqlx::query(q), r).execute(&mut *tx).await?.rows_affected();
            }
            if added > 0 {
                bump_version(&mut tx).await?;
            }
            tx.commit().await?;
            Ok(added)
        }

        pub(super) async fn set_managed(
            pool: &Pool,
            provider: &str,
            service: Option<&str>,
            managed: bool,
        ) -> Result<u64, StoreError> {
            let mut tx = pool.begin().await?;
            let q = sql("UPDATE rates SET managed = ? WHERE provider = ? AND (? IS NULL OR service = ?)");
            let n = sqlx::query(q)
                .bind(managed)
                .bind(provider)
                .bind(service)
                .bind(service)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            bump_version(&mut tx).await?;
            tx.commit().await?;
            Ok(n)
        }

        pub(super) async fn upsert_rate(pool: &Pool, r: &Rate) -> Result<(), StoreError> {
            let mut tx = pool.begin().await?;
            let q = sql(
                "INSERT INTO rates (service, provider, model, unit, price_micros, managed, unverified) VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (service, provider, model, unit) DO UPDATE SET price_micros = excluded.price_micros,
                   managed = excluded.managed, unverified = excluded.unverified",
            );
            bind_rate(sqlx::query(q), r).execute(&mut *tx).await?;
            bump_version(&mut tx).await?;
            tx.commit().await?;
            Ok(())
        }

        pub(super) async fn rates_version(pool: &Pool) -> Result<i64, StoreError> {
            let q = sql("SELECT value FROM settings WHERE key = 'rates_version'");
            Ok(sqlx::query_scalar(q).fetch_one(pool).await?)
        }

        /// A rate's columns, in the order of the inserts above.
        fn bind_rate<'q>(
            q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
            r: &'q Rate,
        ) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
            q.bind(&r.service)
                .bind(&r.provider)
                .bind(&r.model)
                .bind(r.unit.as_str())
                .bind(r.price.0)
                .bind(r.managed)
                .bind(r.unverified)
        }
    };
}
pub(super) use rate_queries;
