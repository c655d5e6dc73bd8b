//! Rate table SQL and row conversion, shared by both backends.

use super::StoreError;
use crate::{MicroUsd, Rate, RateUnit};

pub(super) const SELECT: &str = "SELECT service, provider, model, unit, price_micros, managed, unverified FROM rates";

pub(super) fn rate(
    service: String,
    provider: String,
    model: String,
    unit: String,
    price_micros: i64,
    managed: bool,
    unverified: bool,
) -> Result<Rate, StoreError> {
    let unit = RateUnit::parse(&unit).ok_or_else(|| StoreError::Corrupt(format!("rate unit {unit}")))?;
    Ok(Rate { service, provider, model, unit, price: MicroUsd(price_micros), managed, unverified })
}
