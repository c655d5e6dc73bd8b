//! The server's group-committing ledger writer. Every running call's checkpoint (its usage
//! records, transcript lines, funds check and hold) comes here from the call's ledger task, and
//! the checkpoints that arrive within [`LINGER`] of one another commit in one transaction: one
//! commit (on SQLite, one `fsync`) per batch instead of two per call and checkpoint, and one
//! pooled connection instead of one per call.
//!
//! A batch that fails is retried checkpoint by checkpoint, so one bad checkpoint cannot hold
//! back the others; each call's ledger task handles its own failure as before (one record at a
//! time, retried at the next checkpoint). A store that does not answer within [`STORE_WAIT`]
//! fails the whole batch at once (retrying it piece by piece would only wait longer), and each
//! call keeps its checkpoint for the next one. The batch that timed out also halves the size of
//! the next ([`BatchLimit`]): a store slow enough that a full batch takes longer than the wait,
//! but not one checkpoint, still takes smaller batches instead of timing out on every one.

use crate::metrics as m;
use billing::store::{Checkpoint, FundsCheck, Settled, Store, StoreError, TranscriptLine};
use billing::UsageRecord;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The longest any metering write waits for the store. One writer serves every call, so a store
/// that never answers (a Postgres connection lost without a reset) would otherwise stop all
/// metering for good; a commit normally takes milliseconds, and this is well above a stalled but
/// working store's seconds. Every write here is idempotent, so what timed out is simply sent again.
pub const STORE_WAIT: Duration = Duration::from_secs(20);

/// `write`, or [`StoreError::TimedOut`] once `wait` has passed.
pub(crate) async fn bounded<T>(
    wait: Duration,
    write: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(wait, write).await.unwrap_or(Err(StoreError::TimedOut(wait)))
}

/// How long the first checkpoint of a batch waits for others. Checkpoints come every few
/// seconds per call, so this delays billing by nothing anyone sees, and at 200 calls (40
/// checkpoints a second) gathers about four per commit.
const LINGER: Duration = Duration::from_millis(100);

/// Checkpoints in one transaction at most: a large backlog still commits in bounded pieces.
const MAX_BATCH: usize = 64;

/// Checkpoints waiting for the writer; past this a call's ledger task waits (never the call).
const QUEUE: usize = 4096;

/// One call's checkpoint, owned, on its way to the writer.
struct Job {
    payer_org_id: String,
    session_id: String,
    records: Vec<UsageRecord>,
    lines: Vec<TranscriptLine>,
    funds: Option<FundsCheck>,
    reply: oneshot::Sender<Result<Settled, StoreError>>,
}

impl Job {
    fn checkpoint(&self) -> Checkpoint<'_> {
        Checkpoint {
            payer_org_id: &self.payer_org_id,
            session_id: &self.session_id,
            records: &self.records,
            lines: &self.lines,
            funds: self.funds,
        }
    }
}

/// The handle calls commit through; cloned into every session.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

/// The writer is gone (the server is shutting down): the caller writes on its own.
#[derive(Debug)]
pub(crate) struct WriterGone;

impl Committer {
    /// Start the writer on `store`; it runs until every handle is dropped.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        Self::spawn_waiting(store, STORE_WAIT)
    }

    /// [`Self::spawn`] with its own bound on each store write.
    pub(crate) fn spawn_waiting(store: Arc<dyn Store>, wait: Duration) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx, wait));
        Self { tx }
    }

    /// Commit `cp` with whatever other checkpoints arrive meanwhile.
    pub(crate) async fn commit(&self, cp: Checkpoint<'_>) -> Result<Result<Settled, StoreError>, WriterGone> {
        let (reply, settled) = oneshot::channel();
        let job = Job {
            payer_org_id: cp.payer_org_id.to_string(),
            session_id: cp.session_id.to_string(),
            records: cp.records.to_vec(),
            lines: cp.lines.to_vec(),
            funds: cp.funds,
            reply,
        };
        self.tx.send(job).await.map_err(|_| WriterGone)?;
        settled.await.map_err(|_| WriterGone)
    }
}

/// How many checkpoints the next transaction may take: halved after a batch the store did not
/// commit within its wait, and grown back by one after each batch it did (a timeout costs a whole
/// wait, so the size creeps back up rather than doubling into the next one).
struct BatchLimit(usize);

impl BatchLimit {
    fn after(&mut self, outcome: Outcome, batch: usize) {
        self.0 = match outcome {
            Outcome::TimedOut => (batch / 2).max(1),
            Outcome::Answered => (self.0 + 1).min(MAX_BATCH),
        };
    }
}

/// Whether the store answered a batch (committing it, or refusing some of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered,
    TimedOut,
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, wait: Duration) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut limit = BatchLimit(MAX_BATCH);
    while rx.recv_many(&mut jobs, limit.0).await > 0 {
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        while jobs.len() < limit.0 {
            let room = limit.0 - jobs.len();
            tokio::select! {
                () = &mut linger => break,
                n = rx.recv_many(&mut jobs, room) => if n == 0 { break },
            }
        }
        let batch = jobs.len();
        limit.after(commit(store.as_ref(), &mut jobs, wait).await, batch);
    }
}

/// Commit `jobs` together, or one by one if that fails; answer each. (A job left unanswered
/// sees [`WriterGone`] and writes its checkpoint itself.)
async fn commit(store: &dyn Store, jobs: &mut Vec<Job>, wait: Duration) -> Outcome {
    let batch: Vec<Checkpoint<'_>> = jobs.iter().map(Job::checkpoint).collect();
    let together = bounded(wait, store.settle_checkpoints(&batch)).await;
    drop(batch);
    match together {
        Ok(settled) => {
            committed(settled.len());
            for (job, s) in jobs.drain(..).zip(settled) {
                let _ = job.reply.send(Ok(s));
            }
            Outcome::Answered
        }
        Err(StoreError::TimedOut(_)) => {
            tracing::warn!(
                code = "db_timeout",
                checkpoints = jobs.len(),
                "the store did not answer; checkpoints kept for later, the next batch halved"
            );
            time_out_all(jobs, wait);
            Outcome::TimedOut
        }
        Err(e) => {
            tracing::warn!(code = e.code(), checkpoints = jobs.len(), "batched checkpoint failed; one by one");
            one_by_one(store, jobs, wait).await
        }
    }
}

async fn one_by_one(store: &dyn Store, jobs: &mut Vec<Job>, wait: Duration) -> Outcome {
    let mut left = std::mem::take(jobs).into_iter();
    while let Some(job) = left.next() {
        match bounded(wait, store.settle_checkpoints(std::slice::from_ref(&job.checkpoint()))).await {
            Ok(mut s) => {
                committed(s.len());
                if let Some(s) = s.pop() {
                    let _ = job.reply.send(Ok(s));
                }
            }
            Err(StoreError::TimedOut(_)) => {
                let mut rest: Vec<Job> = left.collect();
                rest.push(job);
                time_out_all(&mut rest, wait);
                return Outcome::TimedOut;
            }
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }
    Outcome::Answered
}

/// Fail every job left with the store's timeout: it is not answering, so each call keeps its
/// checkpoint for its next one.
fn time_out_all(jobs: &mut Vec<Job>, wait: Duration) {
    for job in jobs.drain(..) {
        let _ = job.reply.send(Err(StoreError::TimedOut(wait)));
    }
}

fn committed(checkpoints: usize) {
    metrics::counter!(m::LEDGER_COMMITS).increment(1);
    metrics::counter!(m::LEDGER_CHECKPOINTS).increment(checkpoints as u64);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use billing::org::Plan;
    use billing::store::{period_of, FundsVerdict, OrgRow, SqliteStore};
    use billing::{BilledTo, MicroUsd, Service, UsageUnit};

    pub(crate) fn rec(session: &str, amount: i64) -> UsageRecord {
        UsageRecord {
            session_id: session.into(),
            line: "stt".into(),
            seq: 0,
            service: Service::Stt,
            provider: "deepgram".into(),
            model: "nova-3".into(),
            quantity: 1.0,
            quantity_atoms: 1_000,
            unit: UsageUnit::AudioSeconds,
            billed_to: BilledTo::Managed,
            amount_micros: MicroUsd(amount),
            list_micros: MicroUsd(amount),
            org_id: "acme".into(),
            estimated: false,
            credential_id: "managed:deepgram".into(),
            created_at_ms: billing::store::now_ms(),
        }
    }

    /// A SQLite file with org `acme` (no credits, `wallet` µUSD), and a trigger that refuses
    /// any usage record of session `bad`.
    pub(crate) async fn store(wallet: i64) -> (Arc<dyn Store>, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("committer-{}.db", uuid::Uuid::new_v4().simple()));
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::connect(&url).await.unwrap();
        let plan = Plan {
            id: "zero".into(),
            monthly_credit_micros: 0,
            byok_allowed: true,
            allowed_models: None,
            byok_markup_bps: 0,
            platform_fee_micros_per_minute: 0,
            max_concurrent_calls: 0,
        };
        store.upsert_plan(&plan).await.unwrap();
        let org = OrgRow {
            id: "acme".into(),
            name: "acme".into(),
            plan_id: "zero".into(),
            parent_org_id: None,
            wallet_micros: wallet,
            credits_used_micros: 0,
            credits_period: period_of(billing::store::now_ms()),
            use_own_keys: false,
            wallet_deduction: false,
            negative_limit_micros: 0,
        };
        store.create_org(&org, "hash-acme", "sk_test").await.unwrap();
        let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON usage_records WHEN NEW.session_id = 'bad'
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(&raw)
        .await
        .unwrap();
        raw.close().await;
        (Arc::new(store), path)
    }

    fn checkpoint<'a>(session_id: &'a str, records: &'a [UsageRecord], reserve: i64) -> Checkpoint<'a> {
        let funds = Some(FundsCheck { reserve_micros: reserve, hold_micros: 10 });
        Checkpoint { payer_org_id: "acme", session_id, records, lines: &[], funds }
    }

    /// Calls commit at once: each gets its own records and funds verdict back, and one call
    /// whose checkpoint the store refuses gets its error without costing the others theirs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_call_gets_its_own_answer_and_one_refusal_fails_only_its_call() {
        let (store, path) = store(1_000).await;
        let committer = Committer::spawn(store.clone());
        let calls = ["c1", "c2", "bad", "c3", "c4"];
        let tasks: Vec<_> = calls
            .iter()
            .map(|&id| {
                let committer = committer.clone();
                let records = [rec(id, 100)];
                // c4 asks for more than can be left once everyone has paid.
                let reserve = if id == "c4" { 5_000 } else { 1 };
                tokio::spawn(async move { committer.commit(checkpoint(id, &records, reserve)).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap().expect("the writer answers"));
        }
        for (id, answer) in calls.iter().zip(&answers) {
            match (*id, answer) {
                ("bad", Err(_)) => {}
                ("bad", Ok(s)) => panic!("the refused checkpoint was settled: {s:?}"),
                (_, Err(e)) => panic!("{id} failed: {e}"),
                ("c4", Ok(s)) => assert!(matches!(s.funds, FundsVerdict::Low { .. }), "{s:?}"),
                (id, Ok(s)) => {
                    assert_eq!(s.records.len(), 1, "{id}: {s:?}");
                    assert_eq!(s.records[0].session_id, id);
                    assert_eq!(s.funds, FundsVerdict::Held, "{id}");
                }
            }
        }
        let acme = store.org("acme").await.unwrap().unwrap();
        assert_eq!(acme.wallet_micros, 1_000 - 4 * 100, "four calls paid, the refused one did not");
        assert!(store.usage_for_session("bad").await.unwrap().is_empty());
        assert_eq!(store.held("acme", None).await.unwrap(), 30, "c1–c3 hold; c4's check found too little");
        drop(store);
        remove_db(&path);
    }

    /// A call whose checkpoint the store refuses still gets its funds checked and its hold
    /// extended (in a transaction of their own), and keeps the refused record for next time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_checkpoint_still_runs_its_funds_check() {
        let (store, path) = store(1_000).await;
        let mut settler =
            crate::meter::Settler::new("acme", "bad", store.clone(), Some(Committer::spawn(store.clone())));
        let check = FundsCheck { reserve_micros: 1, hold_micros: 10 };
        assert_eq!(settler.settle(vec![rec("bad", 100)], Some(check)).await, FundsVerdict::Held);
        assert_eq!((settler.unsaved(), settler.written().len()), (1, 0));
        assert_eq!(store.held("acme", None).await.unwrap(), 10);
        let too_much = FundsCheck { reserve_micros: 5_000, hold_micros: 10 };
        assert_eq!(settler.settle(vec![], Some(too_much)).await, FundsVerdict::Low { available_micros: 1_000 });
        drop((settler, store));
        remove_db(&path);
    }

    pub(crate) fn remove_db(path: &std::path::Path) {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
    }

    /// Another connection's exclusive transaction on the SQLite file: to the writer, a store
    /// that does not answer (it waits its 5 s busy timeout, past the tests' short bound).
    async fn lock(path: &std::path::Path) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut c).await.unwrap();
        c
    }

    async fn unlock(mut c: sqlx::SqliteConnection) {
        sqlx::query("COMMIT").execute(&mut c).await.unwrap();
    }

    const SHORT: Duration = Duration::from_millis(300);

    /// A store that does not answer costs the call nothing but time: the checkpoint comes back
    /// within the bound, unchecked, and is kept; once the store answers again, the next
    /// checkpoint writes it, and the wallet is charged once for each record.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_does_not_answer_keeps_the_checkpoint_for_the_next_one() {
        let (store, path) = store(1_000).await;
        let committer = Committer::spawn_waiting(store.clone(), SHORT);
        let mut settler = crate::meter::Settler::new("acme", "c1", store.clone(), Some(committer)).waiting(SHORT);
        let held = lock(&path).await;
        let check = FundsCheck { reserve_micros: 1, hold_micros: 10 };
        let first = tokio::time::timeout(Duration::from_secs(4), settler.settle(vec![rec("c1", 100)], Some(check)))
            .await
            .expect("the settle is bounded");
        assert_eq!(first, FundsVerdict::Unchecked);
        assert_eq!((settler.unsaved(), settler.written().len()), (1, 0));
        unlock(held).await;
        let second = UsageRecord { seq: 1, ..rec("c1", 100) };
        assert_eq!(settler.settle(vec![second], Some(check)).await, FundsVerdict::Held);
        assert_eq!((settler.unsaved(), settler.written().len()), (0, 2));
        assert_eq!(store.usage_for_session("c1").await.unwrap().len(), 2);
        assert_eq!(store.org("acme").await.unwrap().unwrap().wallet_micros, 800, "each record charged once");
        drop((settler, store));
        remove_db(&path);
    }

    /// A call that ends while the store does not answer: its ledger task keeps trying, and the
    /// end of the session gets the last records once the store takes them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_records_are_written_once_the_store_answers_again() {
        let (store, path) = store(1_000).await;
        let committer = Committer::spawn_waiting(store.clone(), SHORT);
        let held = lock(&path).await;
        let ledger = crate::ledger::Ledger::spawn("c1", "acme", store.clone(), committer, false, Default::default());
        let closing = tokio::spawn(ledger.close(vec![rec("c1", 100)]));
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(store.usage_for_session("c1").await.unwrap().is_empty(), "the store was not answering");
        unlock(held).await;
        let written = closing.await.unwrap();
        assert_eq!(written.len(), 1, "the close reports the record written after the store came back");
        assert_eq!(store.usage_for_session("c1").await.unwrap().len(), 1);
        assert_eq!(store.org("acme").await.unwrap().unwrap().wallet_micros, 900);
        drop(store);
        remove_db(&path);
    }

    /// Every usage record the store inserts first counts a three-way join of a `rows`-row table:
    /// a store that takes time per record, as a loaded database does.
    async fn slow_down(path: &std::path::Path, rows: usize) {
        let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query("CREATE TABLE slow (x INTEGER)").execute(&raw).await.unwrap();
        for x in 0..rows {
            sqlx::query("INSERT INTO slow VALUES (?)").bind(x as i64).execute(&raw).await.unwrap();
        }
        sqlx::query(
            "CREATE TRIGGER slow_insert AFTER INSERT ON usage_records
             BEGIN SELECT count(*) FROM slow a, slow b, slow c; END",
        )
        .execute(&raw)
        .await
        .unwrap();
        raw.close().await;
    }

    /// A store too slow for a whole batch within the wait, though quick enough for a few
    /// checkpoints: the writer halves its batches until they fit, and every call's checkpoint
    /// is committed, each record charged once (a fixed batch size timed out on every try).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_too_slow_for_a_whole_batch_still_takes_smaller_ones() {
        let (store, path) = store(100_000).await;
        slow_down(&path, 150).await;
        // One checkpoint's time on this machine, now: the wait is four of them.
        let mut one = Duration::ZERO;
        for i in 0..3 {
            let probe = format!("probe-{i}");
            let records = [rec(&probe, 10)];
            let cp =
                Checkpoint { payer_org_id: "acme", session_id: &probe, records: &records, lines: &[], funds: None };
            let t = std::time::Instant::now();
            store.settle_checkpoints(&[cp]).await.unwrap();
            one = one.max(t.elapsed());
        }
        let wait = (one * 4).max(Duration::from_millis(200));
        let committer = Committer::spawn_waiting(store.clone(), wait);
        // Twelve waits' worth of checkpoints at once: the first batch cannot fit.
        let calls: Vec<String> = (0..48).map(|i| format!("c{i}")).collect();
        let timeouts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = calls
            .iter()
            .map(|id| {
                let (committer, id, timeouts) = (committer.clone(), id.clone(), timeouts.clone());
                tokio::spawn(async move {
                    let records = [rec(&id, 10)];
                    loop {
                        let cp = Checkpoint {
                            payer_org_id: "acme",
                            session_id: &id,
                            records: &records,
                            lines: &[],
                            funds: None,
                        };
                        match committer.commit(cp).await.expect("the writer answers") {
                            Ok(_) => return,
                            Err(StoreError::TimedOut(_)) => {
                                timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            // The store is still busy with a batch that timed out: try again.
                            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                })
            })
            .collect();
        let all = futures::future::join_all(tasks);
        let done = tokio::time::timeout(Duration::from_secs(60), all).await;
        assert!(done.is_ok(), "checkpoints never committed (wait {wait:?}, one checkpoint {one:?})");
        assert!(timeouts.load(std::sync::atomic::Ordering::Relaxed) > 0, "the first batch should not fit the wait");
        for id in &calls {
            assert_eq!(store.usage_for_session(id).await.unwrap().len(), 1, "{id}");
        }
        let wallet = store.org("acme").await.unwrap().unwrap().wallet_micros;
        assert_eq!(wallet, 100_000 - 10 * (48 + 3), "each record charged once");
        drop(store);
        remove_db(&path);
    }

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A session gone without closing while the store was not answering: its ledger task ends,
    /// and the record it could not write is logged at `error` with its amount, not lost silently.
    #[tokio::test]
    async fn records_the_store_never_took_are_logged_not_dropped() {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let (store, path) = store(1_000).await;
        let held = lock(&path).await;
        let committer = Committer::spawn_waiting(store.clone(), SHORT);
        let ledger = crate::ledger::Ledger::spawn("c1", "acme", store.clone(), committer, false, Default::default());
        ledger.settle(vec![rec("c1", 250)]);
        tokio::time::sleep(SHORT * 2).await;
        drop(ledger);
        let logged = || String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
        for _ in 0..50 {
            if logged().contains("not billed") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let line = logged().lines().find(|l| l.contains("not billed")).map(str::to_string);
        let line = line.unwrap_or_else(|| panic!("no error logged:\n{}", logged()));
        assert!(line.contains("ERROR"), "{line}");
        for field in ["session=c1", "org=acme", "records=1", "amount_micros=250"] {
            assert!(line.contains(field), "{field} in {line}");
        }
        unlock(held).await;
        drop(store);
        remove_db(&path);
    }
}
