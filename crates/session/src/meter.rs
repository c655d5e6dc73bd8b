//! Usage meter of one session: cumulative quantities per line, priced from the plan's rate
//! snapshot into idempotent delta records at every checkpoint. Pricing is in memory; the
//! [`Settler`] writes the records (from the session's ledger task, or inline for one API request).

use crate::committer::{bounded, Committer, STORE_WAIT};
use billing::pricing::delta_amount;
use billing::store::{Checkpoint, FundsCheck, FundsVerdict, Settled, Store, StoreError, TranscriptLine};
use billing::{BilledTo, BillingError, MicroUsd, Rate, RateUnit, Service, SessionPlan, UsageRecord};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineId {
    Stt,
    Tts,
    LlmIn,
    LlmOut,
    Telephony,
    Platform,
}

struct Line {
    id: LineId,
    name: &'static str,
    service: Service,
    provider: String,
    model: String,
    rate: Rate,
    /// The rate the markup is a percentage of (a free model's paid sibling).
    markup_rate: Rate,
    billed_to: BilledTo,
    markup_bps: i64,
    credential_id: String,
    progress: Progress,
}

/// How far a line has been counted and billed; every line starts at zero.
#[derive(Default)]
struct Progress {
    cum_atoms: i64,
    billed_atoms: i64,
    seq: u32,
    estimated: bool,
    /// The provider's closing figure has set this line; local counts no longer move it.
    reconciled: bool,
    /// Write the reconciling record at the next checkpoint even when it changes nothing, so the
    /// ledger says the total is the provider's figure and not an estimate.
    confirm: bool,
}

pub(crate) struct Meter {
    session_id: String,
    payer_org_id: String,
    lines: Vec<Line>,
    /// Records priced and not yet handed to the settler ([`Meter::take_records`]).
    outbox: Vec<UsageRecord>,
}

/// Writes priced records (and, for a call, the transcript lines said since the last checkpoint
/// and the funds check) to the store and keeps what it wrote. One transaction per checkpoint
/// (a call's goes through the server's [`Committer`], with other calls'); if it fails, each
/// record is tried on its own so one bad record cannot hold back the rest; what still fails is
/// retried with the next batch (records and lines are idempotent by key). Every write is bounded
/// by [`STORE_WAIT`]: a store that does not answer keeps the whole checkpoint for the next one.
pub(crate) struct Settler {
    payer_org_id: String,
    store: Arc<dyn Store>,
    /// The server's group-committing writer; `None` for an API request (written inline).
    committer: Option<Committer>,
    /// The session whose transcript lines are kept (empty for an API request: none).
    session_id: String,
    /// Records not yet accepted by the store; retried with the same keys.
    unsaved: Vec<UsageRecord>,
    /// Transcript lines not yet written; they go with the next batch.
    lines: Vec<TranscriptLine>,
    /// Everything written, in order.
    written: Vec<UsageRecord>,
    /// The bound on each store write.
    wait: Duration,
}

/// A metered line of a provider service, priced from the plan's snapshot.
fn service_line(id: LineId, name: &'static str, service: Service, p: &billing::ServicePlan, rate: Rate) -> Line {
    let markup_rate = p.markup_rates.iter().find(|r| r.unit == rate.unit).cloned().unwrap_or_else(|| rate.clone());
    Line {
        id,
        name,
        service,
        provider: p.provider.clone(),
        model: p.model.clone(),
        rate,
        markup_rate,
        billed_to: p.billed_to,
        markup_bps: p.markup_bps,
        credential_id: p.credential.id.clone(),
        progress: Progress::default(),
    }
}

/// Rounds up (towards +∞): a markup charge is never short, a markup credit never too large.
fn ceil_div(n: i64, d: i64) -> i64 {
    n.div_euclid(d) + i64::from(n.rem_euclid(d) != 0)
}

fn first_rate(rates: &[Rate], units: &[RateUnit]) -> Option<Rate> {
    rates.iter().find(|r| units.contains(&r.unit)).cloned()
}

impl Meter {
    /// Build the lines of a plan. A service without a price in its snapshot is an error.
    pub(crate) fn from_plan(plan: &SessionPlan) -> Result<Meter, BillingError> {
        let missing = |service: Service, p: &billing::ServicePlan, unit: &str| BillingError::MissingPrice {
            service: service.to_string(),
            provider: p.provider.clone(),
            model: p.model.clone(),
            unit: unit.to_string(),
        };
        let mut lines = Vec::new();
        let mut add = |id, name, service, p: &billing::ServicePlan, rate: Rate| {
            lines.push(service_line(id, name, service, p, rate));
        };
        let stt = first_rate(&plan.stt.rates, &[RateUnit::AudioMinute, RateUnit::AudioHour])
            .ok_or_else(|| missing(Service::Stt, &plan.stt, "audio_minute"))?;
        add(LineId::Stt, Service::Stt.as_str(), Service::Stt, &plan.stt, stt);
        let tts = first_rate(&plan.tts.rates, &[RateUnit::KiloCharacters])
            .ok_or_else(|| missing(Service::Tts, &plan.tts, "kilo_characters"))?;
        add(LineId::Tts, Service::Tts.as_str(), Service::Tts, &plan.tts, tts);
        let llm_in = first_rate(&plan.llm.rates, &[RateUnit::MegaInputTokens])
            .ok_or_else(|| missing(Service::Llm, &plan.llm, "mega_input_tokens"))?;
        add(LineId::LlmIn, "llm.input", Service::Llm, &plan.llm, llm_in);
        let llm_out = first_rate(&plan.llm.rates, &[RateUnit::MegaOutputTokens])
            .ok_or_else(|| missing(Service::Llm, &plan.llm, "mega_output_tokens"))?;
        add(LineId::LlmOut, "llm.output", Service::Llm, &plan.llm, llm_out);
        // Per-minute lines: the carrier's and the plan's platform fee.
        let minute_lines = [
            (LineId::Telephony, Service::Telephony.as_str(), Service::Telephony, "carrier", &plan.telephony),
            (LineId::Platform, Service::Platform.as_str(), Service::Platform, "platform", &plan.platform),
        ];
        for (id, name, service, source, line) in minute_lines {
            let Some(t) = line else { continue };
            if let Some(rate) = first_rate(&t.rates, &[RateUnit::Minute]) {
                lines.push(Line {
                    id,
                    name,
                    service,
                    provider: t.provider.clone(),
                    model: t.model.clone(),
                    markup_rate: rate.clone(),
                    rate,
                    billed_to: t.billed_to,
                    markup_bps: 0,
                    credential_id: format!("{source}:{}", t.provider),
                    progress: Progress::default(),
                });
            }
        }
        Ok(Meter {
            session_id: plan.session_id.clone(),
            payer_org_id: plan.payer_org_id.clone(),
            lines,
            outbox: Vec::new(),
        })
    }

    fn line(&mut self, id: LineId) -> Option<&mut Line> {
        self.lines.iter_mut().find(|l| l.id == id)
    }

    /// Add to a line's cumulative quantity.
    pub(crate) fn add(&mut self, id: LineId, atoms: u64, estimated: bool) {
        if let Some(l) = self.line(id).filter(|l| !l.progress.reconciled) {
            l.progress.cum_atoms = l.progress.cum_atoms.saturating_add(i64::try_from(atoms).unwrap_or(i64::MAX));
            l.progress.estimated |= estimated;
        }
    }

    /// Raise a line's cumulative quantity to `total` (provider-reported totals). Never lowers
    /// it: what was already billed from a local count stays billed.
    pub(crate) fn raise_to(&mut self, id: LineId, total: u64, estimated: bool) {
        if let Some(l) = self.line(id).filter(|l| !l.progress.reconciled) {
            let total = i64::try_from(total).unwrap_or(i64::MAX);
            if total >= l.progress.cum_atoms {
                l.progress.cum_atoms = total;
                l.progress.estimated = estimated;
            }
        }
    }

    /// Set a line to the provider's own closing figure (Deepgram's `Metadata.duration`, …),
    /// up or down: what the local count billed before is corrected at the next checkpoint,
    /// by a credit record when the provider counted less, and by a zero record when it agrees.
    pub(crate) fn reconcile(&mut self, id: LineId, total: u64) {
        if let Some(l) = self.line(id) {
            l.progress.cum_atoms = i64::try_from(total).unwrap_or(i64::MAX);
            l.progress.estimated = false;
            l.progress.reconciled = true;
            l.progress.confirm = true;
        }
    }

    /// Price every line that changed since the last checkpoint into the outbox (a line only
    /// shrinks when reconciled).
    pub(crate) fn checkpoint(&mut self, now_ms: i64) {
        self.checkpoint_lines(now_ms, |_| true);
    }

    /// [`Self::checkpoint`] for one service's lines only: an LLM round ends as its own records.
    pub(crate) fn checkpoint_service(&mut self, service: Service, now_ms: i64) {
        self.checkpoint_lines(now_ms, |l| l.service == service);
    }

    fn checkpoint_lines(&mut self, now_ms: i64, which: impl Fn(&Line) -> bool) {
        for l in self.lines.iter_mut().filter(|l| which(l)) {
            if l.progress.cum_atoms == l.progress.billed_atoms && !l.progress.confirm {
                continue;
            }
            l.progress.confirm = false;
            let list = match delta_amount(&l.rate, l.progress.billed_atoms, l.progress.cum_atoms) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(line = l.name, error = %e, "cannot price usage line");
                    continue;
                }
            };
            // BYOK: the provider bills the org directly; we charge only the platform markup.
            let amount = match l.billed_to {
                BilledTo::Byok => match delta_amount(&l.markup_rate, l.progress.billed_atoms, l.progress.cum_atoms) {
                    Ok(basis) => MicroUsd(ceil_div(basis.0 * l.markup_bps, 10_000)),
                    Err(e) => {
                        tracing::error!(line = l.name, error = %e, "cannot price the markup");
                        continue;
                    }
                },
                _ => list,
            };
            let delta = l.progress.cum_atoms - l.progress.billed_atoms;
            let unit = l.rate.unit.usage_unit();
            let rec = UsageRecord {
                session_id: self.session_id.clone(),
                line: l.name.to_string(),
                seq: l.progress.seq,
                service: l.service,
                provider: l.provider.clone(),
                model: l.model.clone(),
                quantity: unit.quantity_from_atoms(delta),
                quantity_atoms: delta,
                unit,
                billed_to: l.billed_to,
                amount_micros: amount,
                list_micros: list,
                org_id: self.payer_org_id.clone(),
                estimated: l.progress.estimated,
                credential_id: l.credential_id.clone(),
                created_at_ms: now_ms,
            };
            l.progress.seq += 1;
            l.progress.billed_atoms = l.progress.cum_atoms;
            l.progress.estimated = false;
            metrics::counter!(crate::metrics::USAGE_ATOMS, "service" => l.service.as_str(), "provider" => l.provider.clone(), "unit" => unit.as_str(), "billed_to" => l.billed_to.as_str())
                .increment(u64::try_from(delta).unwrap_or(0));
            metrics::counter!(crate::metrics::USAGE_MICROS, "service" => l.service.as_str(), "provider" => l.provider.clone(), "billed_to" => l.billed_to.as_str())
                .increment(u64::try_from(amount.0).unwrap_or(0));
            self.outbox.push(rec);
        }
    }

    /// The records priced since the last call, for the settler.
    pub(crate) fn take_records(&mut self) -> Vec<UsageRecord> {
        std::mem::take(&mut self.outbox)
    }

    /// Fail a service over to `p`: price what the old provider served, then meter its lines
    /// afresh under the new provider, model, rate and credential. Line names and sequence numbers
    /// continue, so the records stay idempotent and say who served each part.
    pub(crate) fn switch_service(&mut self, service: Service, p: &billing::ServicePlan, now_ms: i64) {
        self.checkpoint(now_ms);
        for l in self.lines.iter_mut().filter(|l| l.service == service) {
            let units: &[RateUnit] = match l.id {
                LineId::Stt => &[RateUnit::AudioMinute, RateUnit::AudioHour],
                LineId::Tts => &[RateUnit::KiloCharacters],
                LineId::LlmIn => &[RateUnit::MegaInputTokens],
                LineId::LlmOut => &[RateUnit::MegaOutputTokens],
                LineId::Telephony | LineId::Platform => continue,
            };
            let Some(rate) = first_rate(&p.rates, units) else {
                tracing::error!(line = l.name, provider = %p.provider, "fallback has no price for this line; keeping the old rate");
                continue;
            };
            let seq = l.progress.seq;
            *l = service_line(l.id, l.name, service, p, rate);
            l.progress.seq = seq;
        }
    }
}

/// What a list of records charges in all.
pub(crate) fn total(records: &[UsageRecord]) -> MicroUsd {
    records.iter().fold(MicroUsd::ZERO, |a, r| a.checked_add(r.amount_micros).unwrap_or(a))
}

impl Settler {
    pub(crate) fn new(
        payer_org_id: &str,
        session_id: &str,
        store: Arc<dyn Store>,
        committer: Option<Committer>,
    ) -> Self {
        Self {
            payer_org_id: payer_org_id.to_string(),
            store,
            committer,
            session_id: session_id.to_string(),
            unsaved: Vec::new(),
            lines: Vec::new(),
            written: Vec::new(),
            wait: STORE_WAIT,
        }
    }

    /// The same settler with its own bound on each store write.
    #[cfg(test)]
    pub(crate) fn waiting(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Keep a transcript line; it is written with the next [`Self::settle`].
    pub(crate) fn keep_line(&mut self, line: TranscriptLine) {
        self.lines.push(line);
    }

    /// Write `recs` after whatever is still unsaved from before, with the lines kept since,
    /// then run the funds check if one is asked.
    pub(crate) async fn settle(&mut self, recs: Vec<UsageRecord>, funds: Option<FundsCheck>) -> FundsVerdict {
        self.unsaved.extend(recs);
        if self.unsaved.is_empty() && self.lines.is_empty() && funds.is_none() {
            return FundsVerdict::Unchecked;
        }
        match self.commit(funds).await {
            Ok(settled) => {
                self.written.extend(settled.records);
                self.unsaved.clear();
                self.lines.clear();
                settled.funds
            }
            Err(StoreError::TimedOut(_)) => {
                tracing::warn!(
                    code = "db_timeout",
                    records = self.unsaved.len(),
                    "the store did not answer; the checkpoint is kept for the next one"
                );
                FundsVerdict::Unchecked
            }
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    records = self.unsaved.len(),
                    "usage checkpoint failed; settling one by one"
                );
                self.settle_one_by_one().await;
                match funds {
                    Some(check) => self.check_funds_alone(check).await,
                    None => FundsVerdict::Unchecked,
                }
            }
        }
    }

    /// The checkpoint in one transaction: through the server's writer, or inline without one
    /// (an API request, or a server shutting down).
    async fn commit(&self, funds: Option<FundsCheck>) -> Result<Settled, StoreError> {
        let cp = Checkpoint {
            payer_org_id: &self.payer_org_id,
            session_id: &self.session_id,
            records: &self.unsaved,
            lines: &self.lines,
            funds,
        };
        if let Some(committer) = &self.committer {
            if let Ok(result) = committer.commit(cp).await {
                return result;
            }
        }
        let settled = bounded(self.wait, self.store.settle_checkpoints(std::slice::from_ref(&cp))).await?;
        Ok(settled.into_iter().next().unwrap_or(Settled { records: Vec::new(), funds: FundsVerdict::Unchecked }))
    }

    /// The funds check on its own, when the checkpoint it came with failed: a checkpoint with
    /// nothing else in it, so it is the same check in its own transaction.
    async fn check_funds_alone(&self, check: FundsCheck) -> FundsVerdict {
        let cp = Checkpoint {
            payer_org_id: &self.payer_org_id,
            session_id: &self.session_id,
            records: &[],
            lines: &[],
            funds: Some(check),
        };
        match bounded(self.wait, self.store.settle_checkpoints(std::slice::from_ref(&cp))).await {
            Ok(settled) => settled.first().map_or(FundsVerdict::Unchecked, |s| s.funds),
            Err(e) => {
                tracing::warn!(code = e.code(), "funds check failed; the hold is not extended");
                FundsVerdict::Unchecked
            }
        }
    }

    /// Each record and line on its own; what fails is kept for the next checkpoint, and once
    /// the store stops answering, everything left is.
    async fn settle_one_by_one(&mut self) {
        let mut recs = std::mem::take(&mut self.unsaved).into_iter();
        while let Some(rec) = recs.next() {
            match bounded(self.wait, self.store.settle(&self.payer_org_id, &rec)).await {
                Ok(written) => self.written.extend(written),
                Err(e) => {
                    tracing::warn!(code = e.code(), key = %rec.key(), "usage record not settled; will retry");
                    self.unsaved.push(rec);
                    if matches!(e, StoreError::TimedOut(_)) {
                        self.unsaved.extend(recs);
                        return;
                    }
                }
            }
        }
        let mut lines = std::mem::take(&mut self.lines).into_iter();
        while let Some(line) = lines.next() {
            if let Err(e) = bounded(self.wait, self.store.append_transcript(&self.session_id, &line)).await {
                tracing::warn!(code = e.code(), seq = line.seq, "transcript line not kept; will retry");
                self.lines.push(line);
                if matches!(e, StoreError::TimedOut(_)) {
                    self.lines.extend(lines);
                    return;
                }
            }
        }
    }

    /// Whether anything is still waiting for the store.
    pub(crate) fn pending(&self) -> bool {
        !self.unsaved.is_empty() || !self.lines.is_empty()
    }

    /// The records still waiting for the store.
    pub(crate) fn pending_records(&self) -> &[UsageRecord] {
        &self.unsaved
    }

    /// What is still waiting: records, their amount in µUSD, transcript lines.
    pub(crate) fn pending_summary(&self) -> (usize, i64, usize) {
        (self.unsaved.len(), total(&self.unsaved).0, self.lines.len())
    }

    pub(crate) fn written(&self) -> &[UsageRecord] {
        &self.written
    }

    /// Everything written so far, leaving the settler empty-handed.
    pub(crate) fn take_written(&mut self) -> Vec<UsageRecord> {
        std::mem::take(&mut self.written)
    }

    /// Records the store has refused so far.
    pub(crate) fn unsaved(&self) -> usize {
        self.unsaved.len()
    }
}

/// The meter of one request to the OpenAI-compatible API: a session meter with only the LLM
/// lines, so an API request is priced, marked up and settled exactly like a call's LLM turns.
pub struct RequestMeter {
    meter: Meter,
    settler: Settler,
}

impl RequestMeter {
    pub fn new(
        request_id: &str,
        payer_org_id: &str,
        llm: &billing::ServicePlan,
        store: Arc<dyn Store>,
    ) -> Result<Self, BillingError> {
        let missing = |unit: &str| BillingError::MissingPrice {
            service: Service::Llm.to_string(),
            provider: llm.provider.clone(),
            model: llm.model.clone(),
            unit: unit.to_string(),
        };
        let input = first_rate(&llm.rates, &[RateUnit::MegaInputTokens]).ok_or_else(|| missing("mega_input_tokens"))?;
        let output =
            first_rate(&llm.rates, &[RateUnit::MegaOutputTokens]).ok_or_else(|| missing("mega_output_tokens"))?;
        let lines = vec![
            service_line(LineId::LlmIn, "llm.input", Service::Llm, llm, input),
            service_line(LineId::LlmOut, "llm.output", Service::Llm, llm, output),
        ];
        let meter = Meter {
            session_id: request_id.to_string(),
            payer_org_id: payer_org_id.to_string(),
            lines,
            outbox: Vec::new(),
        };
        Ok(Self { meter, settler: Settler::new(payer_org_id, "", store, None) })
    }

    /// Bill the request's token totals; returns every record written so far. Records the
    /// store refused are retried (same keys) on the next call.
    pub async fn bill(
        &mut self,
        input_tokens: u64,
        output_tokens: u64,
        estimated: bool,
        now_ms: i64,
    ) -> &[UsageRecord] {
        self.meter.raise_to(LineId::LlmIn, input_tokens, estimated);
        self.meter.raise_to(LineId::LlmOut, output_tokens, estimated);
        self.meter.checkpoint(now_ms);
        self.settler.settle(self.meter.take_records(), None).await;
        self.settler.written()
    }

    /// Records still refused by the store after the last [`RequestMeter::bill`].
    pub fn unsaved(&self) -> usize {
        self.settler.unsaved()
    }
}
