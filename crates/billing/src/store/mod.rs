//! Persistence: one [`Store`] trait; SQLite is the embedded default, Postgres serves several
//! nodes sharing one database. Both pass the same story suite (`suite.rs`).
//!
//! The queries are split by concern — `sessions` (and usage rows), `ledger` (settles, wallet,
//! holds), `orgs` (plans, keys, credentials, slots, agents), `rates`, `access` (numbers, stream
//! tokens) and `transcript` — each written once for both databases and compiled per backend by
//! `backend!`. `sqlite.rs` and `postgres.rs` hold only what truly differs; node leases and
//! live events between nodes are per backend by nature (`postgres_nodes.rs`, `sqlite_nodes.rs`).

mod access;
mod backend;
mod ledger;
mod orgs;
#[cfg(test)]
mod pg_testdb;
mod postgres;
mod postgres_nodes;
mod postgres_notify;
mod rates;
mod sessions;
mod split;
mod sqlite;
mod sqlite_nodes;
#[cfg(test)]
mod suite;
mod transcript;

pub use access::{NumberRow, StreamTokenRow, TokenUse};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use transcript::{Speaker, TranscriptLine};

/// The Postgres `NOTIFY` channel that carries change topics between nodes.
pub const CHANGES_CHANNEL: &str = "switchboard_changes";
/// The Postgres `NOTIFY` channel that carries live session events between nodes.
pub const EVENTS_CHANNEL: &str = "switchboard_events";
/// The change topic of the rate table: published in the transaction that changes it.
pub const RATES_TOPIC: &str = "rates";
/// Sent to a subscriber when notifications may have been missed (the listener reconnected):
/// drop every cache rather than trust them.
pub const RESYNC_TOPIC: &str = "*";

/// Seed the default plans (idempotent: existing plans are updated to the defaults' values only
/// when missing).
pub async fn seed_plans(store: &dyn Store) -> Result<(), StoreError> {
    for p in crate::org::Plan::defaults() {
        if store.plan(&p.id).await?.is_none() {
            store.upsert_plan(&p).await?;
        }
    }
    Ok(())
}

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
    #[error("unsupported database url (expected sqlite:…, postgres://… or postgresql://…)")]
    UnsupportedUrl,
    #[error("PostgreSQL at {addr} is unreachable: {cause}")]
    Unreachable { addr: String, cause: String },
    /// A caller's own bound on the wait ran out: the store may still do the work (the writes
    /// this crate makes are idempotent, so doing them again is safe).
    #[error("the store did not answer within {0:?}")]
    TimedOut(std::time::Duration),
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Db(_) => "db_error",
            Self::Migrate(_) => "db_migration",
            Self::Corrupt(_) => "db_corrupt",
            Self::UnsupportedUrl => "db_unsupported_url",
            Self::Unreachable { .. } => "db_unreachable",
            Self::TimedOut(_) => "db_timeout",
        }
    }
}

/// A session as stored: who, when, how it ended, and its plan without keys.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
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
    /// The node that runs (or ran) the session; `None` for rows written before nodes had ids.
    pub node_id: Option<String>,
}

/// A session closed by a surviving node because the node running it lost its lease (read from
/// the `RETURNING` columns of the same names).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LostSession {
    pub session_id: String,
    pub call_sid: Option<String>,
    pub org_id: String,
    pub node_id: String,
}

/// A row read into `T` by column name (its `sqlx::FromRow`), on either backend.
pub(crate) fn from_row<'r, R: sqlx::Row, T: sqlx::FromRow<'r, R>>(r: &'r R) -> Result<T, StoreError> {
    Ok(T::from_row(r)?)
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn open_session(&self, row: &SessionRow) -> Result<(), StoreError>;
    async fn close_session(&self, session_id: &str, ended_at_ms: i64, reason: &str) -> Result<(), StoreError>;
    async fn session(&self, session_id: &str) -> Result<Option<SessionRow>, StoreError>;
    async fn session_by_call_sid(&self, call_sid: &str) -> Result<Option<SessionRow>, StoreError>;
    /// `INSERT … ON CONFLICT DO NOTHING`: `Ok(false)` when the record's key was already written.
    async fn insert_usage(&self, rec: &UsageRecord) -> Result<bool, StoreError>;
    async fn usage_for_session(&self, session_id: &str) -> Result<Vec<UsageRecord>, StoreError>;
    /// Close sessions a crashed process left open, at their last checkpoint (`abandoned`).
    /// Returns how many. SQLite serves one process, so every open session is abandoned; on
    /// Postgres only `node_id`'s own (and rows without a node), since other nodes' sessions
    /// are live: theirs are closed by [`Self::reap_lost_nodes`] when their lease runs out.
    async fn close_abandoned(&self, node_id: &str) -> Result<u64, StoreError>;
    /// Register `node_id` or extend its lease to `lease_ms` from now (the database's clock, so
    /// nodes' clocks need not agree). `Ok(false)` when the node had no lease: its first start,
    /// or its lease ran out and its sessions were closed by another node.
    async fn renew_lease(&self, node_id: &str, lease_ms: i64) -> Result<bool, StoreError>;
    /// Close the open sessions of every node whose lease ran out, at their last checkpoint
    /// (`node_lost`), release their holds and forget those nodes. Usage already written stays
    /// charged exactly once: nothing is charged here. Safe to run on every node at once.
    async fn reap_lost_nodes(&self) -> Result<Vec<LostSession>, StoreError>;
    /// Send one live-event payload to every node sharing the store (Postgres `NOTIFY` on
    /// [`EVENTS_CHANNEL`]; a payload over the notification limit travels by reference).
    /// SQLite: nobody else to tell.
    async fn publish_event(&self, payload: &str) -> Result<(), StoreError>;
    /// Payloads published by any node, from now on ([`RESYNC_TOPIC`] after a reconnect).
    /// `None` where the store is not shared (SQLite).
    async fn subscribe_events(&self) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError>;

    /// Write a usage record and charge `payer_org_id` for it, in one transaction: plan credits
    /// first (`managed`), the rest from the wallet (`wallet`, a second record keyed
    /// `line@wallet`). `byok` records charge their markup the same way and keep `byok`.
    /// A replayed record charges nothing and returns no records.
    async fn settle(&self, payer_org_id: &str, rec: &UsageRecord) -> Result<Vec<UsageRecord>, StoreError>;
    /// A checkpoint in one transaction, all or nothing: [`Self::settle`] for each of `recs`, and
    /// the transcript `lines` of `session_id` said since the last one (idempotent per `seq`;
    /// none for an API request), so a call commits once per checkpoint however much is said.
    async fn settle_checkpoint(
        &self,
        payer_org_id: &str,
        recs: &[UsageRecord],
        session_id: &str,
        lines: &[TranscriptLine],
    ) -> Result<Vec<UsageRecord>, StoreError>;
    /// Several calls' checkpoints in one transaction, all or nothing (one commit for the
    /// batch): each settles as [`Self::settle_checkpoint`] does, then runs its funds check and
    /// extends its hold if it asks. One [`Settled`] per checkpoint, in order.
    async fn settle_checkpoints(&self, batch: &[Checkpoint<'_>]) -> Result<Vec<Settled>, StoreError>;
    async fn upsert_plan(&self, plan: &crate::org::Plan) -> Result<(), StoreError>;
    async fn plan(&self, id: &str) -> Result<Option<crate::org::Plan>, StoreError>;
    /// Every plan's id, sorted (the admin console lists them).
    async fn plan_ids(&self) -> Result<Vec<String>, StoreError>;
    async fn create_org(&self, org: &OrgRow, key_hash: &str, key_prefix: &str) -> Result<(), StoreError>;
    async fn org(&self, id: &str) -> Result<Option<OrgRow>, StoreError>;
    /// Every org, by name (the admin console lists them).
    async fn orgs(&self) -> Result<Vec<OrgRow>, StoreError>;
    async fn org_by_key_hash(&self, key_hash: &str) -> Result<Option<OrgRow>, StoreError>;
    /// Save the org's settings (toggle, agency flags, policy). Balances are not touched.
    async fn update_org(&self, org: &OrgRow) -> Result<(), StoreError>;
    /// Add to (or, negative, take from) the wallet; returns the new balance.
    async fn add_wallet(&self, org_id: &str, amount_micros: i64, reference: &str) -> Result<i64, StoreError>;
    /// Insert or replace the org's credential `(provider, name)`; returns its id.
    async fn put_credential(&self, c: &CredentialRow) -> Result<String, StoreError>;
    async fn credentials(&self, org_id: &str) -> Result<Vec<crate::org::StoredCredential>, StoreError>;
    /// Ok(false) when no such credential belongs to the org.
    async fn delete_credential(&self, org_id: &str, id: &str) -> Result<bool, StoreError>;
    async fn set_slot(&self, org_id: &str, service: &str, credential_id: Option<&str>) -> Result<(), StoreError>;
    async fn slots(&self, org_id: &str) -> Result<std::collections::HashMap<String, String>, StoreError>;
    async fn create_agent(&self, id: &str, org_id: &str, spec_json: &str) -> Result<(), StoreError>;
    /// `(org_id, spec_json)` of an agent.
    async fn agent(&self, id: &str) -> Result<Option<(String, String)>, StoreError>;
    /// `(id, spec_json)` of every agent of the org, oldest first (the console lists them).
    async fn agents(&self, org_id: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Replace an agent's spec; `Ok(false)` when no such agent belongs to the org. Calls in
    /// flight keep the plan they started with.
    async fn update_agent(&self, id: &str, org_id: &str, spec_json: &str) -> Result<bool, StoreError>;
    async fn usage_for_org(&self, org_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<UsageRecord>, StoreError>;
    /// Set (or extend) a session's hold on its payer's funds.
    async fn put_hold(&self, session_id: &str, org_id: &str, amount_micros: i64) -> Result<(), StoreError>;
    async fn release_hold(&self, session_id: &str) -> Result<(), StoreError>;
    /// Sum of the payer's holds, leaving out one session's own.
    async fn held(&self, org_id: &str, except_session: Option<&str>) -> Result<i64, StoreError>;
    /// What decides an org's funds, read in one statement (the one a checkpoint's funds check
    /// runs in its transaction): its balances, its plan's allowance, and its holds but
    /// `except_session`'s.
    async fn funds(&self, org_id: &str, except_session: Option<&str>) -> Result<Option<FundsRow>, StoreError>;
    /// Every credential of every org (for re-encryption after a master key rotation).
    async fn all_credentials(&self) -> Result<Vec<crate::org::StoredCredential>, StoreError>;
    /// Replace a credential's sealed value (same plaintext, newer master key).
    async fn reseal_credential(&self, id: &str, sealed: &str) -> Result<(), StoreError>;
    /// The stored rate table; empty until seeded.
    async fn rates(&self) -> Result<crate::RateTable, StoreError>;
    /// Insert every row of `table` that is not stored yet; bumps the version when it adds any.
    async fn seed_rates(&self, table: &crate::RateTable) -> Result<u64, StoreError>;
    /// Flip `managed` for a provider (optionally one service); returns rows changed and bumps
    /// the version so every node reloads before its next session.
    async fn set_managed(&self, provider: &str, service: Option<&str>, managed: bool) -> Result<u64, StoreError>;
    /// Insert or replace one rate row (an operator's price change); bumps the version.
    async fn upsert_rate(&self, rate: &crate::Rate) -> Result<(), StoreError>;
    /// Moves whenever the rate table changes.
    async fn rates_version(&self) -> Result<i64, StoreError>;

    /// Tell every node sharing this store that `topic` changed (e.g. `rates`, `keys`), so each
    /// drops its cached copy: a rate flip or key rotation made on one node must reach sessions
    /// opened on all of them. Postgres `NOTIFY`s [`CHANGES_CHANNEL`]; SQLite serves one
    /// process, so there is nobody else to tell.
    async fn publish_change(&self, topic: &str) -> Result<(), StoreError>;
    /// Topics published by any node (this one included), from now on. [`RESYNC_TOPIC`] means
    /// some may have been missed. `None` where the store is not shared (SQLite).
    async fn subscribe_changes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, StoreError>;

    /// Route a number to an agent; `Ok(false)` when the number is already taken (by any org).
    async fn create_number(&self, n: &NumberRow) -> Result<bool, StoreError>;
    async fn numbers(&self, org_id: &str) -> Result<Vec<NumberRow>, StoreError>;
    /// Ok(false) when no such number belongs to the org.
    async fn delete_number(&self, org_id: &str, id: &str) -> Result<bool, StoreError>;
    /// The route of an E.164 number, whichever org owns it.
    async fn number(&self, e164: &str) -> Result<Option<NumberRow>, StoreError>;
    /// Save a freshly minted token; `Ok(false)` when a token for the same carrier call id
    /// exists (a replayed answer webhook).
    async fn put_stream_token(&self, t: &StreamTokenRow) -> Result<bool, StoreError>;
    /// Use a token: granted once, atomically across nodes sharing the store.
    async fn consume_stream_token(&self, sid: &str, now_ms: i64) -> Result<TokenUse, StoreError>;
    async fn purge_stream_tokens(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// Admission: place a starting session's hold only if the payer's available funds (credits,
    /// wallet, allowed negative balance, less other sessions' holds) cover it, atomically.
    /// `Ok(false)`: they do not (or the org is gone), and nothing was held.
    async fn place_hold(&self, session_id: &str, org_id: &str, amount_micros: i64) -> Result<bool, StoreError>;
    /// Sessions of the org that are still open (the plan's concurrent-call cap).
    async fn open_sessions(&self, org_id: &str) -> Result<i64, StoreError>;
    /// Sessions started in `[from_ms, to_ms)`, newest first; every org's when `org_id` is None.
    async fn list_sessions(
        &self,
        org_id: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<SessionRow>, StoreError>;
    /// Keep one line of what was said on a session (idempotent per `line.seq`).
    async fn append_transcript(&self, session_id: &str, line: &TranscriptLine) -> Result<(), StoreError>;
    /// A session's transcript, in order.
    async fn transcript(&self, session_id: &str) -> Result<Vec<TranscriptLine>, StoreError>;
}

/// An org's funds as stored ([`Store::funds`]); `monthly_credit_micros` is `None` when the
/// org's plan does not exist.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FundsRow {
    pub plan_id: String,
    pub monthly_credit_micros: Option<i64>,
    pub credits_used_micros: i64,
    pub credits_period: String,
    pub wallet_micros: i64,
    pub negative_limit_micros: i64,
    pub held_micros: i64,
}

/// One call's checkpoint, as [`Store::settle_checkpoints`] commits it with others.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint<'a> {
    pub payer_org_id: &'a str,
    pub session_id: &'a str,
    pub records: &'a [UsageRecord],
    pub lines: &'a [TranscriptLine],
    /// The mid-call funds check, after the records are charged.
    pub funds: Option<FundsCheck>,
}

/// Is `reserve_micros` still available to the payer (the session's own hold left out)? Then
/// hold `hold_micros` for the next slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundsCheck {
    pub reserve_micros: i64,
    pub hold_micros: i64,
}

/// What a checkpoint wrote, and what its funds check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub records: Vec<UsageRecord>,
    pub funds: FundsVerdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FundsVerdict {
    /// No check asked, or the payer has no org or plan in the store (not limited).
    Unchecked,
    /// Enough: the hold was extended.
    Held,
    /// Less than the reserve is available (this much); the hold was left as it was.
    Low { available_micros: i64 },
}

/// An org as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub plan_id: String,
    /// The agency that owns this sub-account.
    pub parent_org_id: Option<String>,
    pub wallet_micros: i64,
    pub credits_used_micros: i64,
    /// `YYYY-MM` the credit usage counts for; a new month starts from zero.
    pub credits_period: String,
    pub use_own_keys: bool,
    /// Agency owner: sub-accounts run on platform keys and this wallet pays.
    pub wallet_deduction: bool,
    /// `allow_negative` policy: how far the wallet may go below zero (0 = `end_call`).
    pub negative_limit_micros: i64,
}

/// A credential row to save (sealed by the vault before it gets here).
#[derive(Debug, Clone)]
pub struct CredentialRow {
    pub id: String,
    pub org_id: String,
    pub provider: String,
    pub name: String,
    pub sealed: String,
    pub last4: String,
}

/// The current credit period, `YYYY-MM` (UTC).
pub fn period_of(ms: i64) -> String {
    // Civil date from days since the epoch (H. Hinnant's algorithm).
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Open the store named by `url` (`sqlite:path`, `sqlite::memory:`, `postgres://…` or
/// `postgresql://…`), migrated.
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// Why an org's context could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("no such org")]
    NoOrg,
    #[error("the org's plan {0:?} does not exist")]
    NoPlan(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Load everything that decides how an org's sessions are served and billed, applying the
/// agency rules: a sub-account uses its owner's keys, toggle and slots; when the owner's
/// wallet-deduction toggle is on it runs on platform keys and the owner's wallet pays.
///
/// `session` is the asking session, whose own hold does not count against it.
pub async fn load_context(
    store: &dyn Store,
    org_id: &str,
    session: Option<&str>,
) -> Result<crate::org::OrgContext, ContextError> {
    let org = store.org(org_id).await?.ok_or(ContextError::NoOrg)?;
    let owner = match &org.parent_org_id {
        Some(p) => Some(store.org(p).await?.ok_or(ContextError::NoOrg)?),
        None => None,
    };
    let (keys_org, payer) = match &owner {
        Some(o) if o.wallet_deduction => (None, o.clone()),
        Some(o) => (Some(o.clone()), org.clone()),
        None => (Some(org.clone()), org.clone()),
    };
    let plan = store.plan(&org.plan_id).await?.ok_or_else(|| ContextError::NoPlan(org.plan_id.clone()))?;
    let payer_plan = store.plan(&payer.plan_id).await?.ok_or_else(|| ContextError::NoPlan(payer.plan_id.clone()))?;
    let (credentials, slots, use_own_keys) = match &keys_org {
        Some(k) => (store.credentials(&k.id).await?, store.slots(&k.id).await?, k.use_own_keys),
        None => (Vec::new(), Default::default(), false),
    };
    let funds = funds_of(&payer, &payer_plan, store.held(&payer.id, session).await?);
    Ok(crate::org::OrgContext {
        org_id: org.id.clone(),
        payer_org_id: payer.id.clone(),
        plan,
        use_own_keys,
        credentials,
        slots,
        funds,
    })
}

impl FundsRow {
    /// The funds this row adds up to; `None` when the org's plan does not exist.
    pub fn funds(&self) -> Option<crate::org::Funds> {
        let allowance = self.monthly_credit_micros?;
        Some(crate::org::Funds {
            credits_left_micros: credits_left(allowance, self.credits_used_micros, &self.credits_period),
            wallet_micros: self.wallet_micros,
            negative_limit_micros: self.negative_limit_micros,
            held_micros: self.held_micros,
        })
    }
}

fn funds_of(payer: &OrgRow, plan: &crate::org::Plan, held_micros: i64) -> crate::org::Funds {
    crate::org::Funds {
        credits_left_micros: credits_left(plan.monthly_credit_micros, payer.credits_used_micros, &payer.credits_period),
        wallet_micros: payer.wallet_micros,
        negative_limit_micros: payer.negative_limit_micros,
        held_micros,
    }
}

/// Credits count only in the month they were used in.
fn credits_left(allowance_micros: i64, used_micros: i64, period: &str) -> i64 {
    let used = if period == period_of(now_ms()) { used_micros } else { 0 };
    (allowance_micros - used).max(0)
}

/// Hash of an org API key as stored (SHA-256, hex). Keys are random, so no salt is needed.
pub fn hash_api_key(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}
