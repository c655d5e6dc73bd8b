//! The session's ledger task: every store access of a running call — writing usage records,
//! the mid-call funds check, extending the hold, keeping the transcript — happens here, in
//! order, so a slow or stalled store never delays the turn loop (barge-in `clear`, agent
//! audio). The turn loop prices usage in memory ([`crate::meter::Meter`]) and sends the
//! records; it hears back only when funds run low. What the turn loop sends together (a
//! checkpoint's records and its funds check) is written as one checkpoint, through the
//! server's group-committing writer ([`crate::committer`]).

use crate::committer::Committer;
use crate::drain::Writing;
use crate::meter::Settler;
use crate::spool::Spool;
use billing::store::{now_ms, FundsCheck, FundsVerdict, Speaker, Store, TranscriptLine};
use billing::UsageRecord;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

enum Cmd {
    Settle(Vec<UsageRecord>),
    /// After what was sent before is settled: is `reserve` still available? Then hold `hold`
    /// for the next slice; else report low funds.
    CheckFunds {
        reserve: i64,
        hold: i64,
    },
    /// Keep a line of what was said (numbered by the task, in the order sent), written with the
    /// next checkpoint's records in the same transaction.
    Transcript {
        at_ms: i64,
        speaker: Speaker,
        text: String,
        interrupted: bool,
    },
    /// Settle what is left and hand back every record written.
    Close(oneshot::Sender<Vec<UsageRecord>>),
}

/// The turn loop's side of the ledger task. Sending never waits: the channel is unbounded, and
/// what goes through it is a few records per checkpoint, never per audio frame.
pub(crate) struct Ledger {
    tx: mpsc::UnboundedSender<Cmd>,
    low_funds: mpsc::Receiver<i64>,
    keep_transcripts: bool,
}

/// How long the end of a session waits for its last records to be written before it reports
/// what it has (the task goes on writing in the background).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// After the call, the pauses before each new try to write what the store did not take (about
/// four minutes in all: longer than a Postgres failover). Then the task gives up and logs what
/// it could not write, so the loss is seen rather than silent.
const CLOSE_RETRIES: [Duration; 8] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
];

/// Once the server is stopping (and waiting for this task), the pause between tries.
const STOPPING_PAUSE: Duration = Duration::from_secs(2);

impl Ledger {
    pub(crate) fn spawn(
        session_id: &str,
        payer_org_id: &str,
        store: Arc<dyn Store>,
        committer: Committer,
        keep_transcripts: bool,
        after: Afterwards,
    ) -> Ledger {
        let (tx, rx) = mpsc::unbounded_channel();
        let (low_tx, low_funds) = mpsc::channel(1);
        let task = Task {
            session_id: session_id.to_string(),
            payer_org_id: payer_org_id.to_string(),
            settler: Settler::new(payer_org_id, session_id, store, Some(committer)),
            low: low_tx,
            transcript_seq: 0,
            after,
        };
        tokio::spawn(task.run(rx));
        Ledger { tx, low_funds, keep_transcripts }
    }

    pub(crate) fn settle(&self, records: Vec<UsageRecord>) {
        if !records.is_empty() {
            let _ = self.tx.send(Cmd::Settle(records));
        }
    }

    pub(crate) fn check_funds(&self, reserve: i64, hold: i64) {
        let _ = self.tx.send(Cmd::CheckFunds { reserve, hold });
    }

    pub(crate) fn transcript(&self, speaker: Speaker, text: &str, interrupted: bool) {
        if self.keep_transcripts && !text.trim().is_empty() {
            let (at_ms, text) = (now_ms(), text.to_string());
            let _ = self.tx.send(Cmd::Transcript { at_ms, speaker, text, interrupted });
        }
    }

    /// Resolves when a funds check found less than its reserve available (the amount available).
    pub(crate) async fn low_funds(&mut self) -> Option<i64> {
        self.low_funds.recv().await
    }

    /// Settle `last` and everything before it; every record written by the session.
    pub(crate) async fn close(self, last: Vec<UsageRecord>) -> Vec<UsageRecord> {
        self.settle(last);
        let (reply, written) = oneshot::channel();
        if self.tx.send(Cmd::Close(reply)).is_err() {
            return Vec::new();
        }
        match tokio::time::timeout(CLOSE_WAIT, written).await {
            Ok(Ok(records)) => records,
            _ => {
                tracing::warn!("the store is slow: the session's last usage records are still being written");
                Vec::new()
            }
        }
    }
}

struct Task {
    session_id: String,
    payer_org_id: String,
    settler: Settler,
    low: mpsc::Sender<i64>,
    transcript_seq: i64,
    after: Afterwards,
}

/// Where a ledger task answers once its session is gone: the server's drain, which waits for it
/// when stopping, and the spool, which keeps what the store never took. Both absent in tests of
/// the ledger alone.
#[derive(Default)]
pub(crate) struct Afterwards {
    pub writing: Option<Writing>,
    pub spool: Option<Arc<Spool>>,
}

/// However the task ends (retries spent, the session gone without closing, the server
/// stopping), what the store never took is spooled, or logged: never dropped silently.
impl Drop for Task {
    fn drop(&mut self) {
        if !self.settler.pending() {
            return;
        }
        let (records, amount_micros, lines) = self.settler.pending_summary();
        if lines > 0 {
            tracing::warn!(session = %self.session_id, lines, "transcript lines the store did not take are dropped");
        }
        if records == 0 {
            return;
        }
        let (session, org) = (&self.session_id, &self.payer_org_id);
        let spooled = self.after.spool.as_ref().map(|s| (s, s.keep(org, session, self.settler.pending_records())));
        match spooled {
            Some((spool, Ok(()))) => tracing::warn!(
                %session, %org, records, amount_micros, spool = %spool.path().display(),
                "the store did not take the call's last usage records; spooled, replayed every minute and at the next start"
            ),
            Some((_, Err(e))) => tracing::error!(
                %session, %org, records, amount_micros, error = %e,
                "the store did not take the call's last usage records, nor the spool; they are not billed"
            ),
            None => tracing::error!(
                %session, %org, records, amount_micros,
                "the store did not take the call's last usage records; they are not billed"
            ),
        }
    }
}

/// What the task took from its queue in one go, to write as one checkpoint.
#[derive(Default)]
struct Gathered {
    records: Vec<UsageRecord>,
    funds: Option<FundsCheck>,
    close: Option<oneshot::Sender<Vec<UsageRecord>>>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        while let Some(cmd) = rx.recv().await {
            // Whatever is queued behind it (a checkpoint's records come with its funds check)
            // goes in the same checkpoint.
            let mut got = Gathered::default();
            self.take(cmd, &mut got);
            while let Ok(cmd) = rx.try_recv() {
                self.take(cmd, &mut got);
            }
            if got.records.is_empty() && got.funds.is_none() && got.close.is_none() {
                continue; // only transcript lines: they wait for the next checkpoint
            }
            let verdict = self.settler.settle(got.records, got.funds).await;
            if let (FundsVerdict::Low { available_micros }, Some(check)) = (verdict, got.funds) {
                tracing::warn!(
                    org = %self.payer_org_id,
                    available = available_micros,
                    reserve = check.reserve_micros,
                    "funds about to run out mid-call"
                );
                let _ = self.low.try_send(available_micros);
            }
            if let Some(reply) = got.close {
                self.finish().await;
                let _ = reply.send(self.settler.take_written());
                return;
            }
        }
    }

    /// Try again, now and then, to write what the store has not taken yet; once the server is
    /// stopping (it waits for this task, for a while), every [`STOPPING_PAUSE`].
    async fn finish(&mut self) {
        let stopping = self.after.writing.as_ref().map(Writing::stopping).unwrap_or_default();
        let mut pauses = CLOSE_RETRIES.iter();
        while self.settler.pending() {
            let pause = if stopping.is_cancelled() {
                STOPPING_PAUSE
            } else {
                match pauses.next() {
                    Some(&pause) => pause,
                    None => return,
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stopping.cancelled(), if !stopping.is_cancelled() => {}
            }
            self.settler.settle(Vec::new(), None).await;
        }
    }

    fn take(&mut self, cmd: Cmd, got: &mut Gathered) {
        match cmd {
            Cmd::Settle(records) => got.records.extend(records),
            Cmd::CheckFunds { reserve, hold } => {
                got.funds = Some(FundsCheck { reserve_micros: reserve, hold_micros: hold });
            }
            Cmd::Transcript { at_ms, speaker, text, interrupted } => {
                let line = TranscriptLine { seq: self.transcript_seq, at_ms, speaker, text, interrupted };
                self.transcript_seq += 1;
                self.settler.keep_line(line);
            }
            Cmd::Close(reply) => got.close = Some(reply),
        }
    }
}
