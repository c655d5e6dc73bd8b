//! `X-Amz-Date` timestamps (`YYYYMMDDTHHMMSSZ`, UTC) without a calendar dependency.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A signing instant, whole seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AmzDate(u64);

impl AmzDate {
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        Self(t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
    }

    pub fn from_unix_secs(secs: u64) -> Self {
        Self(secs)
    }

    pub fn unix_secs(self) -> u64 {
        self.0
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0)
    }

    /// Parses `YYYYMMDDTHHMMSSZ`; `None` for anything else (including impossible dates).
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u64> {
            let part = s.get(r)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        let days = days_from_civil(y as i64, mo as u32, d as u32);
        let days = u64::try_from(days).ok()?;
        let t = Self(days * 86_400 + h * 3600 + mi * 60 + sec);
        // Round-trip rejects 31 February and the like.
        (t.to_string() == s).then_some(t)
    }

    /// `YYYYMMDD`, the date part of the credential scope.
    pub fn date(self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }
}

impl fmt::Display for AmzDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = (self.0 / 86_400) as i64;
        let secs = self.0 % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
    }
}

// Howard Hinnant's days↔civil algorithms (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = AmzDate::parse("20150830T123600Z").unwrap();
        assert_eq!(t.unix_secs(), 1_440_938_160);
        assert_eq!(t.to_string(), "20150830T123600Z");
        assert_eq!(t.date(), "20150830");
        assert_eq!(AmzDate::from_unix_secs(951_782_400).to_string(), "20000229T000000Z");
        assert_eq!(AmzDate::parse("20150231T000000Z"), None);
        assert_eq!(AmzDate::parse("2015-08-30T12:36:00Z"), None);
        assert_eq!(AmzDate::parse("20150830T1236000"), None);
    }
}
