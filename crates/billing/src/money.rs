use serde::{Deserialize, Serialize};

/// An amount of money in integer micro-USD (1 USD = 1,000,000). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct MicroUsd(pub i64);

impl MicroUsd {
    pub const ZERO: MicroUsd = MicroUsd(0);

    pub fn checked_add(self, other: MicroUsd) -> Option<MicroUsd> {
        self.0.checked_add(other.0).map(MicroUsd)
    }

    pub fn checked_sub(self, other: MicroUsd) -> Option<MicroUsd> {
        self.0.checked_sub(other.0).map(MicroUsd)
    }

    /// Parse a decimal USD string ("0.0048") exactly; more than 6 fraction digits is an error.
    pub fn parse_usd(s: &str) -> Result<MicroUsd, String> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(format!("not a number: {s:?}"));
        }
        if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("not a decimal number: {s:?}"));
        }
        if frac.len() > 6 {
            return Err(format!("more than 6 decimals (finer than a micro-dollar): {s:?}"));
        }
        let int: i64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| format!("too large: {s:?}"))? };
        let mut frac_micros: i64 = 0;
        for (i, c) in frac.chars().enumerate() {
            frac_micros += i64::from(c as u8 - b'0') * 10i64.pow(5 - i as u32);
        }
        let v = int
            .checked_mul(1_000_000)
            .and_then(|v| v.checked_add(frac_micros))
            .ok_or_else(|| format!("too large: {s:?}"))?;
        Ok(MicroUsd(if neg { -v } else { v }))
    }
}

impl std::fmt::Display for MicroUsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:06}", a / 1_000_000, a % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(MicroUsd::parse_usd("0.0048"), Ok(MicroUsd(4800)));
        assert_eq!(MicroUsd::parse_usd("15.00"), Ok(MicroUsd(15_000_000)));
        assert_eq!(MicroUsd::parse_usd(".5"), Ok(MicroUsd(500_000)));
        assert_eq!(MicroUsd::parse_usd("3"), Ok(MicroUsd(3_000_000)));
        assert!(MicroUsd::parse_usd("0.0000001").is_err());
        assert!(MicroUsd::parse_usd("1e3").is_err());
        assert!(MicroUsd::parse_usd("").is_err());
    }

    #[test]
    fn displays_dollars() {
        assert_eq!(MicroUsd(4800).to_string(), "$0.004800");
        assert_eq!(MicroUsd(-1_500_000).to_string(), "-$1.500000");
    }
}
