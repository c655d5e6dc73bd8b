//! Persistence: one [`Store`] trait; SQLite is the embedded default.

mod sqlite;

pub use sqlite::SqliteStore;

use crate::UsageRecord;
use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url (expected sqlite:…)")]
    UnsupportedUrl,
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Db(_) => "db_error",
            Self::Migrate(_) => "db_migration",
            Self::Corrupt(_) => "db_corrupt",
            Self::UnsupportedUrl => "db_unsupported_url",
        }
    }
}

/// A session as stored: who, when, how it ended, and its plan without keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRow {
    pub session_id: String,
    pub call_sid: Option<String>,
    pub org_id: String,
    pub gateway: String,
    /// `open` or `closed`.
    pub status: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub end_reason: Option<String>,
    /// The session plan as JSON (credentials appear as id + last 4 only).
    pub plan_json: String,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn open_session(&self, row: &SessionRow) -> Result<(), StoreError>;
    async fn close_session(
        &self,
        session_id: &str,
        ended_at_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError>;
    async fn session(&self, session_id: &str) -> Result<Option<SessionRow>, StoreError>;
    async fn session_by_call_sid(&self, call_sid: &str) -> Result<Option<SessionRow>, StoreError>;
    /// `INSERT … ON CONFLICT DO NOTHING`: `Ok(false)` when the record's key was already written.
    async fn insert_usage(&self, rec: &UsageRecord) -> Result<bool, StoreError>;
    async fn usage_for_session(&self, session_id: &str) -> Result<Vec<UsageRecord>, StoreError>;
    /// Close sessions a crashed process left open, at their last checkpoint. Returns how many.
    async fn close_abandoned(&self) -> Result<u64, StoreError>;
}

/// Open the store named by `url` (`sqlite:path` or `sqlite::memory:`), migrated.
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}
