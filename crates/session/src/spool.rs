//! The spool: usage records a session's ledger task could not write before it ended (the store
//! down past its retries, or the server stopping), kept in a local file — one JSON line per
//! session, synced to disk — and written to the store when the server next starts and every
//! minute while it runs. Inserting a record is idempotent, so one the store did take after all
//! (it committed as the wait ran out) is not charged twice. Transcript lines are not spooled: no
//! call content goes to local disk.

use crate::committer::bounded;
use billing::store::{Checkpoint, Store};
use billing::UsageRecord;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// One session's records, as a line of the file.
#[derive(Serialize, Deserialize)]
struct Entry<R> {
    payer_org_id: String,
    session_id: String,
    records: R,
}

/// A node's spool file. Each node keeps its own: two processes must not share one.
pub struct Spool {
    path: PathBuf,
    /// One append at a time: at shutdown every ledger task still holding records appends.
    append: Mutex<()>,
}

/// What a replay wrote, and what it had to keep for the next start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub sessions: usize,
    pub records: usize,
    pub kept: usize,
}

impl Spool {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), append: Mutex::new(()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append a session's unwritten records, on disk before this returns.
    pub(crate) fn keep(&self, payer_org_id: &str, session_id: &str, records: &[UsageRecord]) -> std::io::Result<()> {
        let entry = Entry { payer_org_id: payer_org_id.to_string(), session_id: session_id.to_string(), records };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.append(&line)
    }

    fn append(&self, lines: &[u8]) -> std::io::Result<()> {
        let _one = self.append.lock().unwrap_or_else(PoisonError::into_inner);
        append_synced(&self.path, lines)
    }

    /// The file a replay works from: the spool is moved aside first, so sessions ending
    /// meanwhile append to a new one. Left behind by a replay that did not finish, it is
    /// replayed first next time (writing a record twice is a no-op).
    fn taken(&self) -> PathBuf {
        self.path.with_extension("replaying")
    }

    /// Write every spooled session's records to the store (each waiting at most `wait`). What
    /// the store still refuses, and a line that cannot be read, go back to the spool.
    pub async fn replay(&self, store: &dyn Store, wait: Duration) -> std::io::Result<Replayed> {
        let taken = self.taken();
        {
            let _one = self.append.lock().unwrap_or_else(PoisonError::into_inner);
            // A leftover is replayed first; the spool waits for the next round.
            if !taken.exists() {
                match std::fs::rename(&self.path, &taken) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        let text = match std::fs::read_to_string(&taken) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replayed::default()),
            Err(e) => return Err(e),
        };
        let mut done = Replayed::default();
        let mut kept = String::new();
        let mut silent = false;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            // Once the store does not answer, the rest is kept without waiting on it again.
            let written = !silent && self.write_line(line, store, wait, &mut done, &mut silent).await;
            if !written {
                kept.push_str(line);
                kept.push('\n');
                done.kept += 1;
            }
        }
        if !kept.is_empty() {
            self.append(kept.as_bytes())?;
        }
        std::fs::remove_file(&taken)?;
        Ok(done)
    }

    /// One spooled session to the store; false when it stays spooled. A line that cannot be
    /// read is moved to the `.unreadable` file beside the spool (true: it is not retried).
    async fn write_line(
        &self,
        line: &str,
        store: &dyn Store,
        wait: Duration,
        done: &mut Replayed,
        silent: &mut bool,
    ) -> bool {
        let Ok(entry) = serde_json::from_str::<Entry<Vec<UsageRecord>>>(line) else {
            let aside = self.path.with_extension("unreadable");
            tracing::error!(code = "spool_unreadable", file = %aside.display(), "a spooled line cannot be read; moved aside");
            return append_synced(&aside, format!("{line}\n").as_bytes()).is_ok();
        };
        let cp = Checkpoint {
            payer_org_id: &entry.payer_org_id,
            session_id: &entry.session_id,
            records: &entry.records,
            lines: &[],
            funds: None,
        };
        match bounded(wait, store.settle_checkpoints(std::slice::from_ref(&cp))).await {
            Ok(_) => {
                done.sessions += 1;
                done.records += entry.records.len();
                true
            }
            Err(e) => {
                *silent = matches!(e, billing::store::StoreError::TimedOut(_));
                tracing::warn!(session = %entry.session_id, code = e.code(), "spooled usage not written yet; kept");
                false
            }
        }
    }
}

/// Append `bytes` to `path`, on disk before this returns. Billing data: the file is readable
/// by the server's user only.
fn append_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committer::tests::{rec, remove_db, store};
    use billing::UsageRecord;

    const WAIT: Duration = Duration::from_secs(5);

    fn spool_file() -> PathBuf {
        std::env::temp_dir().join(format!("spool-{}.jsonl", uuid::Uuid::new_v4().simple()))
    }

    /// Kept sessions are written at replay, each record charged once even when the store had
    /// taken one already, and the file is gone afterwards.
    #[tokio::test]
    async fn kept_records_are_written_once_at_replay_and_the_file_removed() {
        let (store, db) = store(10_000).await;
        let spool = Spool::new(spool_file());
        let c1 = [rec("c1", 100), UsageRecord { seq: 1, ..rec("c1", 200) }];
        let c2 = [rec("c2", 50)];
        // c1's first record reached the store after all (its commit outlived the wait).
        let cp = Checkpoint { payer_org_id: "acme", session_id: "c1", records: &c1[..1], lines: &[], funds: None };
        store.settle_checkpoints(&[cp]).await.unwrap();
        spool.keep("acme", "c1", &c1).unwrap();
        spool.keep("acme", "c2", &c2).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(spool.path()).unwrap().permissions().mode() & 0o777, 0o600);
        let done = spool.replay(store.as_ref(), WAIT).await.unwrap();
        assert_eq!(done, Replayed { sessions: 2, records: 3, kept: 0 });
        assert!(!spool.path().exists());
        assert_eq!(store.usage_for_session("c1").await.unwrap().len(), 2);
        assert_eq!(store.usage_for_session("c2").await.unwrap().len(), 1);
        let wallet = store.org("acme").await.unwrap().unwrap().wallet_micros;
        assert_eq!(wallet, 10_000 - 350, "each record charged once");
        assert_eq!(spool.replay(store.as_ref(), WAIT).await.unwrap(), Replayed::default(), "nothing twice");
        remove_db(&db);
    }

    /// A replay that did not finish left its file behind: the next replays that first, then the
    /// spool, and nothing is lost or charged twice.
    #[tokio::test]
    async fn a_replay_left_unfinished_is_taken_up_first() {
        let (store, db) = store(10_000).await;
        let spool = Spool::new(spool_file());
        spool.keep("acme", "c1", &[rec("c1", 10)]).unwrap();
        std::fs::rename(spool.path(), spool.taken()).unwrap();
        spool.keep("acme", "c2", &[rec("c2", 20)]).unwrap();
        let first = spool.replay(store.as_ref(), WAIT).await.unwrap();
        assert_eq!(first, Replayed { sessions: 1, records: 1, kept: 0 });
        assert!(spool.path().exists() && !spool.taken().exists());
        let second = spool.replay(store.as_ref(), WAIT).await.unwrap();
        assert_eq!(second, Replayed { sessions: 1, records: 1, kept: 0 });
        assert!(!spool.path().exists());
        for id in ["c1", "c2"] {
            assert_eq!(store.usage_for_session(id).await.unwrap().len(), 1, "{id}");
        }
        assert_eq!(store.org("acme").await.unwrap().unwrap().wallet_micros, 10_000 - 30);
        remove_db(&db);
    }

    /// A session the store refuses stays in the spool, a line that cannot be read is moved
    /// aside, and the rest is written.
    #[tokio::test]
    async fn what_cannot_be_written_stays_for_the_next_start() {
        let (store, db) = store(10_000).await;
        let spool = Spool::new(spool_file());
        spool.keep("acme", "bad", &[rec("bad", 10)]).unwrap();
        std::fs::OpenOptions::new().append(true).open(spool.path()).unwrap().write_all(b"{not json\n").unwrap();
        spool.keep("acme", "c1", &[rec("c1", 10)]).unwrap();
        let done = spool.replay(store.as_ref(), WAIT).await.unwrap();
        assert_eq!(done, Replayed { sessions: 1, records: 1, kept: 1 });
        let left = std::fs::read_to_string(spool.path()).unwrap();
        assert_eq!(left.lines().count(), 1, "{left}");
        assert!(left.contains("\"bad\""), "{left}");
        let aside = spool.path().with_extension("unreadable");
        assert_eq!(std::fs::read_to_string(&aside).unwrap(), "{not json\n", "the unreadable line moved aside");
        assert_eq!(store.usage_for_session("c1").await.unwrap().len(), 1);
        let _ = std::fs::remove_file(spool.path());
        let _ = std::fs::remove_file(aside);
        remove_db(&db);
    }
}
