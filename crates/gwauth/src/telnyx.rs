//! Telnyx: Ed25519 over `timestamp ‖ "|" ‖ raw body`, headers `telnyx-signature-ed25519` and
//! `telnyx-timestamp` (§3.2). The timestamp is signed, so a ±300 s window bounds replays.

use crate::AuthError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// Allowed clock skew between Telnyx and us, as the SDKs use.
pub const MAX_SKEW_S: u64 = 300;

/// For callers that play Telnyx (tests, our CLI): the base64 signature of `timestamp|body`.
pub fn sign(secret: &[u8; 32], timestamp: &str, body: &[u8]) -> String {
    let sig = SigningKey::from_bytes(secret).sign(&message(timestamp, body));
    STANDARD.encode(sig.to_bytes())
}

/// The base64 public key Telnyx shows in Mission Control, for the matching [`sign`] secret.
pub fn public_key_b64(secret: &[u8; 32]) -> String {
    STANDARD.encode(SigningKey::from_bytes(secret).verifying_key().to_bytes())
}

/// Both headers required, `|now − ts| ≤ 300`, key exactly 32 bytes, signature exactly 64, then
/// `verify_strict` (rejects small-order keys and non-canonical signatures).
pub fn verify(
    public_key_b64: &str,
    timestamp: Option<&str>,
    body: &[u8],
    signature_b64: Option<&str>,
    now_s: i64,
) -> Result<(), AuthError> {
    let timestamp = timestamp.filter(|t| !t.is_empty()).ok_or(AuthError::Missing(TIMESTAMP_HEADER))?;
    let signature_b64 = signature_b64.filter(|s| !s.is_empty()).ok_or(AuthError::Missing(SIGNATURE_HEADER))?;
    if !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Malformed(TIMESTAMP_HEADER));
    }
    let ts: i64 = timestamp.parse().map_err(|_| AuthError::Malformed(TIMESTAMP_HEADER))?;
    if now_s.abs_diff(ts) > MAX_SKEW_S {
        return Err(AuthError::Stale);
    }
    let key: [u8; 32] = decode_exact(public_key_b64).ok_or(AuthError::Malformed("telnyx public key"))?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| AuthError::Malformed("telnyx public key"))?;
    let sig: [u8; 64] = decode_exact(signature_b64).ok_or(AuthError::Malformed(SIGNATURE_HEADER))?;
    key.verify_strict(&message(timestamp, body), &Signature::from_bytes(&sig)).map_err(|_| AuthError::BadSignature)
}

fn message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(timestamp.len() + 1 + body.len());
    msg.extend_from_slice(timestamp.as_bytes());
    msg.push(b'|');
    msg.extend_from_slice(body);
    msg
}

fn decode_exact<const N: usize>(b64: &str) -> Option<[u8; N]> {
    STANDARD.decode(b64.trim()).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 §7.1 TEST 1.
    const SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const TS: &str = "1700000000";
    const NOW: i64 = 1_700_000_000;
    const BODY: &str = r#"{"data":{"event_type":"call.initiated","payload":{"call_control_id":"v3:abc","from":"+15550001111","to":"+15550002222","direction":"incoming"}}}"#;
    const SIG: &str = "tqzvaSa1tBgMVwRzAGR64Oab5hda/CHHl1qZxte3RoMlJ2BSAIA73nIf9DhFj89iqf+qY+u2aqFH6deGivZiCw==";

    fn secret() -> [u8; 32] {
        let mut s = [0u8; 32];
        hex::decode_to_slice(SECRET, &mut s).unwrap();
        s
    }

    #[test]
    fn rfc8032_key_and_empty_message_signature() {
        assert_eq!(public_key_b64(&secret()), PUBLIC);
        let sig = SigningKey::from_bytes(&secret()).sign(b"");
        let hex = hex::encode(sig.to_bytes());
        assert!(hex.starts_with("e5564300") && hex.ends_with("7a100b"), "{hex}");
    }

    #[test]
    fn derived_webhook_vector() {
        assert_eq!(sign(&secret(), TS, BODY.as_bytes()), SIG);
        assert_eq!(verify(PUBLIC, Some(TS), BODY.as_bytes(), Some(SIG), NOW), Ok(()));
    }

    #[test]
    fn skew_window_is_300_seconds_each_way() {
        let check = |now| verify(PUBLIC, Some(TS), BODY.as_bytes(), Some(SIG), now);
        assert_eq!(check(NOW + 300), Ok(()));
        assert_eq!(check(NOW - 300), Ok(()));
        assert_eq!(check(NOW + 301), Err(AuthError::Stale));
        assert_eq!(check(NOW - 301), Err(AuthError::Stale));
    }

    #[test]
    fn negatives() {
        let body = BODY.replace("+15550002222", "+15550002223");
        assert_eq!(verify(PUBLIC, Some(TS), body.as_bytes(), Some(SIG), NOW), Err(AuthError::BadSignature));
        // Signature bound to the timestamp: a fresh timestamp on an old body fails.
        assert_eq!(verify(PUBLIC, Some("1700000001"), BODY.as_bytes(), Some(SIG), NOW), Err(AuthError::BadSignature));
        assert_eq!(verify(PUBLIC, None, BODY.as_bytes(), Some(SIG), NOW), Err(AuthError::Missing(TIMESTAMP_HEADER)));
        assert_eq!(verify(PUBLIC, Some(TS), BODY.as_bytes(), None, NOW), Err(AuthError::Missing(SIGNATURE_HEADER)));
        assert_eq!(verify(PUBLIC, Some(TS), BODY.as_bytes(), Some(""), NOW), Err(AuthError::Missing(SIGNATURE_HEADER)));
        assert_eq!(
            verify(PUBLIC, Some("-5"), BODY.as_bytes(), Some(SIG), NOW),
            Err(AuthError::Malformed(TIMESTAMP_HEADER))
        );
        assert_eq!(
            verify(PUBLIC, Some("99999999999999999999"), BODY.as_bytes(), Some(SIG), NOW),
            Err(AuthError::Malformed(TIMESTAMP_HEADER))
        );
    }

    #[test]
    fn signature_and_key_lengths_are_exact() {
        let sig = STANDARD.decode(SIG).unwrap();
        let short = STANDARD.encode(&sig[..63]);
        let long = STANDARD.encode([sig.as_slice(), &[0]].concat());
        for bad in [short.as_str(), long.as_str(), "%%%"] {
            assert_eq!(
                verify(PUBLIC, Some(TS), BODY.as_bytes(), Some(bad), NOW),
                Err(AuthError::Malformed(SIGNATURE_HEADER))
            );
        }
        let key31 = STANDARD.encode([0u8; 31]);
        assert_eq!(
            verify(&key31, Some(TS), BODY.as_bytes(), Some(SIG), NOW),
            Err(AuthError::Malformed("telnyx public key"))
        );
    }

    #[test]
    fn round_trip_with_another_key() {
        let secret = [7u8; 32];
        let sig = sign(&secret, "1700000123", b"To=%2B15550002222");
        assert_eq!(verify(&public_key_b64(&secret), Some("1700000123"), b"To=%2B15550002222", Some(&sig), NOW), Ok(()));
        assert_eq!(
            verify(PUBLIC, Some("1700000123"), b"To=%2B15550002222", Some(&sig), NOW),
            Err(AuthError::BadSignature)
        );
    }
}
