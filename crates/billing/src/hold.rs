//! How much a session holds on its payer's funds: the estimated cost of its next minute.

use crate::{BilledTo, RateUnit, ServicePlan, SessionPlan};

/// One minute of a voice session, as the hold assumes it: the caller's audio all minute, the
/// agent speaking 900 characters, one LLM turn of 3,000 prompt and 300 reply tokens, and the
/// per-minute lines.
pub fn slice_estimate(plan: &SessionPlan) -> i64 {
    fn line(p: &ServicePlan, unit: RateUnit, atoms: i64) -> i64 {
        let Ok(rate) = p.rate(unit) else { return 0 };
        let list = crate::pricing::amount_for(rate, atoms).map(|m| m.0).unwrap_or(0);
        match p.billed_to {
            BilledTo::Byok => (list * p.markup_bps + 9_999) / 10_000,
            _ => list,
        }
    }
    let stt = line(&plan.stt, RateUnit::AudioMinute, 60_000).max(line(&plan.stt, RateUnit::AudioHour, 60_000));
    let tts = line(&plan.tts, RateUnit::KiloCharacters, 900);
    let llm = line(&plan.llm, RateUnit::MegaInputTokens, 3_000) + line(&plan.llm, RateUnit::MegaOutputTokens, 300);
    let per_minute: i64 = [&plan.telephony, &plan.platform]
        .into_iter()
        .flatten()
        .filter_map(|t| t.rates.first())
        .map(|r| crate::pricing::amount_for(r, 60_000).map(|m| m.0).unwrap_or(0))
        .sum();
    stt + tts + llm + per_minute
}
