//! Switchboard's own signature on the webhooks its agents' tools call, so the org's service can
//! tell a real tool call from a forged or replayed one. The scheme is Stripe's, over our header:
//!
//! `X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
//!
//! The secret is the org's vault secret `webhook`/`signing`. Verifiers recompute the MAC over
//! the exact bytes received and refuse timestamps outside their tolerance (replays).

use crate::mac::{ct_eq, hmac_sha256};
use crate::AuthError;

/// The request header that carries the signature.
pub const HEADER: &str = "x-switchboard-signature";

/// The header value for `body` sent at `now_s`.
pub fn sign(secret: &[u8], now_s: u64, body: &[u8]) -> String {
    let t = now_s.to_string();
    let mac = hmac_sha256(secret, &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(mac))
}

/// Checks a received header against the raw body: the MAC, then the timestamp within
/// `tolerance_s` of `now_s` either way.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_s: u64, tolerance_s: u64) -> Result<(), AuthError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let t = t.ok_or(AuthError::Missing("t"))?;
    let ts: u64 = t.parse().map_err(|_| AuthError::Malformed("t"))?;
    let given = hex::decode(v1.ok_or(AuthError::Missing("v1"))?).map_err(|_| AuthError::Malformed("v1"))?;
    if !ct_eq(&hmac_sha256(secret, &[t.as_bytes(), b".", body]), &given) {
        return Err(AuthError::BadSignature);
    }
    if ts.abs_diff(now_s) > tolerance_s {
        return Err(AuthError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_refuses_tampering_and_replays() {
        let body = br#"{"tool":"order_status","arguments":{"order_id":"4217"}}"#;
        let h = sign(b"whsec_test", 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(h.len(), "t=1700000000,v1=".len() + 64);
        assert_eq!(verify(b"whsec_test", &h, body, 1_700_000_100, 300), Ok(()));
        assert_eq!(verify(b"whsec_other", &h, body, 1_700_000_000, 300), Err(AuthError::BadSignature));
        assert_eq!(verify(b"whsec_test", &h, b"{}", 1_700_000_000, 300), Err(AuthError::BadSignature));
        assert_eq!(verify(b"whsec_test", &h, body, 1_700_000_301, 300), Err(AuthError::Stale));
        let moved = h.replace("t=1700000000", "t=1700000200");
        assert_eq!(verify(b"whsec_test", &moved, body, 1_700_000_200, 300), Err(AuthError::BadSignature));
        assert_eq!(verify(b"whsec_test", "v1=00", body, 0, 300), Err(AuthError::Missing("t")));
        assert_eq!(verify(b"whsec_test", "t=1,v1=zz", body, 1, 300), Err(AuthError::Malformed("v1")));
    }

    /// The vector in docs/tools.md, recomputed with Python's hmac module.
    #[test]
    fn documented_vector() {
        let h = sign(b"whsec_example", 1_767_225_600, br#"{"tool":"order_status"}"#);
        assert_eq!(h, "t=1767225600,v1=7bffe9ea517962d43c8753f362def0b0feee546d4975b89ae57d5f44a460e595");
    }
}
