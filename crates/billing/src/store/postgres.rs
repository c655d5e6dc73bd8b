//! Postgres: the shared store for several nodes. The queries are shared with SQLite
//! (`backend.rs`); here is only what Postgres does its own way: numbered placeholders, connection
//! errors that name the server, row locks, and change notifications (`postgres_notify`).

use super::StoreError;
use sqlx::postgres::PgPoolOptions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per node: settles hold one for a short locked transaction each.
const POOL_SIZE: u32 = 8;

/// The multi-node store: every node points at one Postgres database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
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

type Pool = sqlx::PgPool;
type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;

/// Postgres numbers its placeholders (`$1`, `$2`, …) where the shared queries write `?`.
fn sql(s: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(numbered(s))
}

fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Lock the payers' org rows (`FOR UPDATE`) first, so settles on one org from any node run one
/// after another; settles on other orgs go on in parallel.
async fn begin_settle<'p>(pool: &'p Pool, payers: &[&str]) -> Result<sqlx::Transaction<'p, Db>, StoreError> {
    let mut tx = pool.begin().await?;
    // Locked in id order, so two batches sharing payers (on any node) wait for one another
    // instead of deadlocking.
    sqlx::query("SELECT 1 FROM orgs WHERE id = ANY($1) ORDER BY id FOR UPDATE").bind(payers).execute(&mut *tx).await?;
    Ok(tx)
}

async fn publish_change(pool: &Pool, topic: &str) -> Result<(), StoreError> {
    super::postgres_notify::publish(pool, topic).await
}

async fn subscribe_changes(pool: &Pool) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError> {
    super::postgres_notify::subscribe_to(pool, super::CHANGES_CHANNEL).await.map(Some)
}

/// Delivered at commit, to every node (this one included): each reloads its table.
async fn rates_changed(tx: &mut sqlx::Transaction<'_, Db>) -> Result<(), StoreError> {
    super::postgres_notify::publish(&mut **tx, super::RATES_TOPIC).await
}

/// Other nodes' open sessions are live: a starting node closes only its own leftovers (and
/// rows from before nodes had ids); a lost node's are closed by the reaper.
fn abandoned_scope(node_id: &str) -> Option<&str> {
    Some(node_id)
}

use super::postgres_nodes::{publish_event, reap_lost_nodes, renew_lease};

async fn subscribe_events(pool: &Pool) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError> {
    super::postgres_nodes::subscribe_events(pool).await.map(Some)
}

super::backend::backend!(PostgresStore);

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_placeholders_in_order() {
        assert_eq!(super::numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}
