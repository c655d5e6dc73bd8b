//! Quantity → money. Prices a *cumulative* quantity and bills the difference, so rounding
//! never accumulates: a line checkpointed a hundred times costs what it would in one record.

use crate::{BillingError, MicroUsd, Rate};

/// Price of `atoms` metering atoms at `rate`, rounded up to the next micro-USD.
pub fn amount_for(rate: &Rate, atoms: i64) -> Result<MicroUsd, BillingError> {
    let atoms = i128::from(atoms.max(0));
    let per = i128::from(rate.unit.atoms_per_unit());
    let num = atoms.checked_mul(i128::from(rate.price.0)).ok_or(BillingError::Overflow)?;
    let v = (num + per - 1) / per;
    i64::try_from(v).map(MicroUsd).map_err(|_| BillingError::Overflow)
}

/// Amount to bill when a line's cumulative quantity grows from `prev_atoms` to `cum_atoms`.
pub fn delta_amount(rate: &Rate, prev_atoms: i64, cum_atoms: i64) -> Result<MicroUsd, BillingError> {
    let now = amount_for(rate, cum_atoms)?;
    let before = amount_for(rate, prev_atoms)?;
    now.checked_sub(before).ok_or(BillingError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RateUnit;

    fn rate(unit: RateUnit, micros: i64) -> Rate {
        Rate {
            service: "stt".into(),
            provider: "p".into(),
            model: "m".into(),
            unit,
            price: MicroUsd(micros),
            managed: true,
            unverified: false,
        }
    }

    #[test]
    fn a_minute_of_nova3_costs_its_list_price() {
        let r = rate(RateUnit::AudioMinute, 4800);
        assert_eq!(amount_for(&r, 60_000).unwrap(), MicroUsd(4800));
        assert_eq!(amount_for(&r, 1).unwrap(), MicroUsd(1)); // rounds up
        assert_eq!(amount_for(&r, 0).unwrap(), MicroUsd(0));
    }

    #[test]
    fn checkpointed_deltas_sum_to_the_total() {
        let r = rate(RateUnit::MegaInputTokens, 150_000);
        let mut billed = MicroUsd(0);
        let mut prev = 0;
        for cum in (0..=100_000).step_by(333) {
            billed = billed.checked_add(delta_amount(&r, prev, cum).unwrap()).unwrap();
            prev = cum;
        }
        assert_eq!(billed, amount_for(&r, prev).unwrap());
    }
}
