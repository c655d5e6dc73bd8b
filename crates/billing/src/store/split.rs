//! How one usage record is charged: plan credits first, the rest from the wallet. Pure, so the
//! SQLite and Postgres ledgers apply exactly the same rules.

use super::period_of;
use crate::{BilledTo, MicroUsd, UsageRecord};

/// The payer's credit state as read (under lock) before charging.
#[derive(Debug, Clone, Copy)]
pub(super) struct CreditState<'a> {
    pub used_micros: i64,
    pub period: &'a str,
    pub allowance_micros: i64,
}

/// What to write for one record and how the payer's balances change.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Charge {
    /// The first record always carries the original key, so its insert decides a replay.
    pub records: Vec<UsageRecord>,
    pub from_credits: i64,
    pub from_wallet: i64,
    /// The payer's new `credits_used_micros` and `credits_period`.
    pub credits_used_micros: i64,
    pub credits_period: String,
}

/// Split `rec` between credits and wallet. A record whose month differs from the stored
/// period starts that month from zero credits used. When credits run out inside a record it
/// becomes two: the credit part under its own key and the wallet part keyed `line@wallet`,
/// quantity and list price in proportion to money. `byok` records stay one `byok` record.
///
/// A negative record (a reconciliation credit: the provider's closing figure came in below
/// what was billed from the local count) gives the money back the same way round: to this
/// month's used credits first, as far as they go, and the rest to the wallet.
pub(super) fn charge(rec: &UsageRecord, state: CreditState<'_>) -> Charge {
    let period = period_of(rec.created_at_ms);
    let used = if state.period == period { state.used_micros } else { 0 };
    let amount = rec.amount_micros.0;
    let from_credits = if amount >= 0 { amount.min((state.allowance_micros - used).max(0)) } else { amount.max(-used) };
    let from_wallet = amount - from_credits;
    let records = if rec.billed_to == BilledTo::Byok || from_wallet == 0 {
        vec![rec.clone()]
    } else if from_credits == 0 {
        vec![UsageRecord { billed_to: BilledTo::Wallet, ..rec.clone() }]
    } else {
        let wallet_atoms = rec.quantity_atoms * from_wallet / amount;
        let credit_atoms = rec.quantity_atoms - wallet_atoms;
        let share = |atoms: i64| {
            if rec.quantity_atoms == 0 {
                0.0
            } else {
                rec.quantity * atoms as f64 / rec.quantity_atoms as f64
            }
        };
        let list_wallet = rec.list_micros.0 * from_wallet / amount;
        vec![
            UsageRecord {
                quantity: share(credit_atoms),
                quantity_atoms: credit_atoms,
                amount_micros: MicroUsd(from_credits),
                list_micros: MicroUsd(rec.list_micros.0 - list_wallet),
                ..rec.clone()
            },
            UsageRecord {
                line: format!("{}@wallet", rec.line),
                billed_to: BilledTo::Wallet,
                quantity: share(wallet_atoms),
                quantity_atoms: wallet_atoms,
                amount_micros: MicroUsd(from_wallet),
                list_micros: MicroUsd(list_wallet),
                ..rec.clone()
            },
        ]
    };
    Charge { records, from_credits, from_wallet, credits_used_micros: used + from_credits, credits_period: period }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Service, UsageUnit};

    fn rec(amount: i64, billed_to: BilledTo) -> UsageRecord {
        UsageRecord {
            session_id: "s".into(),
            line: "tts".into(),
            seq: 0,
            service: Service::Tts,
            provider: "cartesia".into(),
            model: "sonic".into(),
            quantity: 100.0,
            quantity_atoms: 100,
            unit: UsageUnit::Characters,
            billed_to,
            amount_micros: MicroUsd(amount),
            list_micros: MicroUsd(amount * 2),
            org_id: "o".into(),
            estimated: false,
            credential_id: "managed:cartesia".into(),
            created_at_ms: 0,
        }
    }

    fn state(used: i64, allowance: i64) -> CreditState<'static> {
        CreditState { used_micros: used, period: "1970-01", allowance_micros: allowance }
    }

    #[test]
    fn credits_cover_whole_record() {
        let c = charge(&rec(40, BilledTo::Managed), state(0, 100));
        assert_eq!(c.records, vec![rec(40, BilledTo::Managed)]);
        assert_eq!((c.from_credits, c.from_wallet, c.credits_used_micros), (40, 0, 40));
    }

    #[test]
    fn split_is_proportional_and_sums_to_the_original() {
        let c = charge(&rec(100, BilledTo::Managed), state(75, 100));
        assert_eq!((c.from_credits, c.from_wallet), (25, 75));
        let [credit, wallet] = c.records.as_slice() else { panic!("expected two records, got {:?}", c.records) };
        assert_eq!((credit.line.as_str(), credit.billed_to), ("tts", BilledTo::Managed));
        assert_eq!((credit.quantity_atoms, credit.quantity), (25, 25.0));
        assert_eq!(credit.list_micros, MicroUsd(50));
        assert_eq!((wallet.line.as_str(), wallet.billed_to), ("tts@wallet", BilledTo::Wallet));
        assert_eq!((wallet.quantity_atoms, wallet.quantity), (75, 75.0));
        assert_eq!(wallet.list_micros, MicroUsd(150));
    }

    #[test]
    fn exhausted_credits_retag_as_wallet_but_byok_stays() {
        let c = charge(&rec(10, BilledTo::Managed), state(100, 100));
        assert_eq!(c.records[0].billed_to, BilledTo::Wallet);
        let c = charge(&rec(10, BilledTo::Byok), state(95, 100));
        assert_eq!(c.records, vec![rec(10, BilledTo::Byok)]);
        assert_eq!((c.from_credits, c.from_wallet), (5, 5));
    }

    #[test]
    fn a_credit_returns_to_used_credits_first_then_the_wallet() {
        let mut credit = rec(-30, BilledTo::Managed);
        credit.quantity_atoms = -30;
        let c = charge(&credit, state(100, 100));
        assert_eq!((c.from_credits, c.from_wallet, c.credits_used_micros), (-30, 0, 70));
        let c = charge(&credit, state(10, 100));
        assert_eq!((c.from_credits, c.from_wallet, c.credits_used_micros), (-10, -20, 0));
        let [to_credits, to_wallet] = c.records.as_slice() else { panic!("expected two records, got {:?}", c.records) };
        assert_eq!((to_credits.amount_micros, to_wallet.amount_micros), (MicroUsd(-10), MicroUsd(-20)));
        assert_eq!(to_credits.quantity_atoms + to_wallet.quantity_atoms, -30);
        let c = charge(&credit, state(0, 100));
        assert_eq!((c.from_credits, c.from_wallet), (0, -30));
        assert_eq!(c.records[0].billed_to, BilledTo::Wallet);
    }

    #[test]
    fn a_new_month_starts_from_zero() {
        let old = CreditState { used_micros: 100, period: "1969-12", allowance_micros: 100 };
        let c = charge(&rec(30, BilledTo::Managed), old);
        assert_eq!((c.from_credits, c.credits_used_micros), (30, 30));
        assert_eq!(c.credits_period, "1970-01");
    }
}
