//! Throwaway Postgres databases for the store tests: one fresh database per test, dropped by
//! a guard even when the test panics. Postgres is required; an unreachable server fails the
//! test with instructions instead of skipping it.

use super::PostgresStore;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::time::Duration;

/// The server to create test databases on (a URL whose user may `CREATE DATABASE`).
pub(super) const ENV: &str = "SWITCHBOARD_TEST_POSTGRES";
pub(super) const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub(super) struct TestDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin_url = std::env::var(ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let mut conn = admin(&admin_url).await;
        let name = format!("switchboard_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin_url).expect("admin url parses");
        url.set_path(&format!("/{name}"));
        Self { admin_url, name, url: url.to_string() }
    }

    /// A migrated store on this database (call twice for two "nodes").
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect to test database {}: {e}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let mut conn = admin(&admin_url).await;
                // FORCE: the test's pools and listeners may still hold connections.
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await {
                    eprintln!("could not drop test database {name}: {e}");
                }
            });
        })
        .join();
        if done.is_err() && !std::thread::panicking() {
            panic!("dropping test database {} failed", self.name);
        }
    }
}

async fn admin(url: &str) -> PgConnection {
    let err = match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url)).await {
        Ok(Ok(conn)) => return conn,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out after 10 s".to_owned(),
    };
    panic!(
        "\n\nPostgres is required for the billing store tests and is unreachable at {} ({err}).\n\
         Start it with:  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
         or point {ENV} at a server whose user may CREATE DATABASE.\n\n",
        redacted(url)
    );
}

fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable url>".to_owned(),
    }
}
