//! How much a session holds on its payer's funds: the estimated cost of its next minute.

use crate::{BilledTo, RateUnit, ServicePlan, SessionPlan};

/// One minute of a voice session, as the hold assumes it: the caller's audio all minute, the
/// agent speaking 900 characters, one LLM turn of 3,000 prompt and 300 reply tokens, and the
/// per-minute lines.
pub fn slice_estimate(plan: &SessionPlan) -> i64 {
    let tts = line(&plan.tts, RateUnit::KiloCharacters, 900);
    let llm = line(&plan.llm, RateUnit::MegaInputTokens, 3_000) + line(&plan.llm, RateUnit::MegaOutputTokens, 300);
    timed_lines(plan, 60_000) + tts + llm
}

/// What a service line costs the payer for `atoms` of `unit` (the markup only, for BYOK).
fn line(p: &ServicePlan, unit: RateUnit, atoms: i64) -> i64 {
    let Ok(rate) = p.rate(unit) else { return 0 };
    let list = crate::pricing::amount_for(rate, atoms).map(|m| m.0).unwrap_or(0);
    match p.billed_to {
        BilledTo::Byok => (list * p.markup_bps + 9_999) / 10_000,
        _ => list,
    }
}

/// The lines that run with the clock (caller audio to STT, telephony, platform fee) for `ms`.
fn timed_lines(plan: &SessionPlan, ms: i64) -> i64 {
    let stt = line(&plan.stt, RateUnit::AudioMinute, ms).max(line(&plan.stt, RateUnit::AudioHour, ms));
    let per_minute: i64 = [&plan.telephony, &plan.platform]
        .into_iter()
        .flatten()
        .filter_map(|t| t.rates.first())
        .map(|r| crate::pricing::amount_for(r, ms).map(|m| m.0).unwrap_or(0))
        .sum();
    stt + per_minute
}

/// How much must stay available at a checkpoint for the call to go on: two checkpoint
/// intervals at the minute estimate's pace (the one running now and the next), plus saying a
/// closing line of `closing_chars` (its characters, and the clock while it plays, at about
/// 70 ms a character). Below it, an `end_call` session says goodbye now, so the payer's funds
/// never go below their floor (zero, or minus the allowed negative balance).
pub fn floor_reserve(plan: &SessionPlan, interval_ms: i64, closing_chars: usize) -> i64 {
    let chars = i64::try_from(closing_chars).unwrap_or(i64::MAX / 1_000);
    let intervals = slice_estimate(plan).saturating_mul(2 * interval_ms) / 60_000;
    let closing = line(&plan.tts, RateUnit::KiloCharacters, chars) + timed_lines(plan, chars.saturating_mul(70));
    intervals.saturating_add(closing)
}
