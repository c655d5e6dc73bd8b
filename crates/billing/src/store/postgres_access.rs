//! Postgres: numbers, stream tokens and session listings (queries in `access.rs`).

use super::postgres::session_from_row;

fn sql(s: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(super::access::numbered(s))
}

super::access::access_queries!(sqlx::PgPool, sqlx::postgres::PgRow, sql);
