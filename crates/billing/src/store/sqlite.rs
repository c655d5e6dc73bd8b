//! SQLite: the embedded default store. The queries are shared with Postgres (`backend.rs`);
//! here is only what SQLite does its own way.

use super::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::str::FromStr;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The embedded default store: one SQLite file (WAL), safe for one server process.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5))
            // Postgres's byte-order collation, so the shared queries' `COLLATE "C"` sorts alike.
            .collation("C", |a: &str, b: &str| a.as_bytes().cmp(b.as_bytes()));
        let max = if url.contains(":memory:") { 1 } else { 4 };
        // No ping before each use: a connection is a handle on a local file that nothing can
        // cut, and each ping is a round trip to the connection's worker thread (two thread
        // wake-ups per query for every checkpoint of every call).
        let pool = SqlitePoolOptions::new().max_connections(max).test_before_acquire(false).connect_with(opts).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

type Pool = sqlx::SqlitePool;
type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;

/// SQLite takes the shared queries' `?` placeholders as written.
fn sql(s: &'static str) -> &'static str {
    s
}

/// SQLite has no row locks: `BEGIN IMMEDIATE` takes the database's write lock up front, so
/// concurrent settles wait (busy timeout) instead of failing when a read transaction tries to
/// upgrade.
async fn begin_settle<'p>(pool: &'p Pool, _payers: &[&str]) -> Result<sqlx::Transaction<'p, Db>, StoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// One process owns a SQLite file, so its caches are the only ones: nobody else to tell.
async fn publish_change(_pool: &Pool, _topic: &str) -> Result<(), StoreError> {
    Ok(())
}

async fn subscribe_changes(_pool: &Pool) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError> {
    Ok(None)
}

/// Nothing shares the file: no other node to tell.
async fn rates_changed(_tx: &mut sqlx::Transaction<'_, Db>) -> Result<(), StoreError> {
    Ok(())
}

/// One process per file: whatever is open was left by a previous run, whichever node id.
fn abandoned_scope(_node_id: &str) -> Option<&str> {
    None
}

use super::sqlite_nodes::{reap_lost_nodes, renew_lease};

async fn publish_event(_pool: &Pool, _payload: &str) -> Result<(), StoreError> {
    Ok(())
}

async fn subscribe_events(_pool: &Pool) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError> {
    Ok(None)
}

super::backend::backend!(SqliteStore);
