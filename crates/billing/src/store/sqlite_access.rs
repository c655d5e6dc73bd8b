//! SQLite: numbers, stream tokens and session listings (queries in `access.rs`).

use super::sqlite::session_from_row;

fn sql(s: &'static str) -> &'static str {
    s
}

super::access::access_queries!(sqlx::SqlitePool, sqlx::sqlite::SqliteRow, sql);
