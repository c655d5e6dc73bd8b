//! Per-call stream token (§4): minted into the answer document, checked when the carrier opens
//! the media socket, so only a call we answered can stream and only on its own carrier's endpoint.
//!
//! Format v1, 76 lowercase hex chars (hex passes Plivo's `[A-Za-z0-9]` header rule):
//! `hex(ver=1 ‖ kid:u8 ‖ exp:u32be ‖ sid:[u8;16] ‖ mac:[u8;16])`, with
//! `mac = HMAC-SHA256(K[kid], "vsgw-stream-v1\0" ‖ carrier:u8 ‖ ver ‖ kid ‖ exp ‖ sid)[..16]`.
//! The carrier is in the MAC but not in the token, so a token copied to another endpoint fails.
//! Single use (the `sid → call` record) is the server's job, not this module's.

use crate::mac::{ct_eq, hmac_sha256};
use crate::{AuthError, KeySpecError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"vsgw-stream-v1\0";
const RAW_LEN: usize = 1 + 1 + 4 + 16 + 16;
/// Length of a token on the wire.
pub const TOKEN_LEN: usize = RAW_LEN * 2;
/// Tolerance for a token that expired just now (clock skew between nodes).
const EXPIRY_GRACE_S: i64 = 5;

/// The endpoint a token is bound to; the value is the byte fed to the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Carrier {
    Twilio = 1,
    Telnyx = 2,
    Plivo = 3,
    Vonage = 4,
    Web = 0x10,
    Asterisk = 0x20,
}

impl Carrier {
    pub const ALL: [Carrier; 6] =
        [Carrier::Twilio, Carrier::Telnyx, Carrier::Plivo, Carrier::Vonage, Carrier::Web, Carrier::Asterisk];

    /// From the gateway name used in routes and config (`"client"` is the browser/app gateway).
    pub fn from_gateway(name: &str) -> Option<Carrier> {
        Some(match name {
            "twilio" => Carrier::Twilio,
            "telnyx" => Carrier::Telnyx,
            "plivo" => Carrier::Plivo,
            "vonage" => Carrier::Vonage,
            "client" => Carrier::Web,
            "asterisk" => Carrier::Asterisk,
            _ => return None,
        })
    }
}

/// Signing keys by id. The newest (last) signs, all verify, so rotation is: append a key to
/// every node, wait for it to spread, then drop the old one after the longest token TTL.
#[derive(Clone)]
pub struct KeyRing {
    /// `(kid, key)`, in spec order; never empty.
    keys: Vec<(u8, [u8; 32])>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<u8> = self.keys.iter().map(|(kid, _)| *kid).collect();
        f.debug_struct("KeyRing").field("kids", &kids).finish_non_exhaustive()
    }
}

impl KeyRing {
    /// `"1:<base64 32 bytes>,2:<base64 32 bytes>"`: kid 1..=255, unique, newest last. Blank
    /// entries are skipped. Errors name the entry by position and never echo key material.
    pub fn from_spec(spec: &str) -> Result<KeyRing, KeySpecError> {
        let mut keys: Vec<(u8, [u8; 32])> = Vec::new();
        for (i, entry) in spec.split(',').map(str::trim).enumerate().filter(|(_, e)| !e.is_empty()) {
            let bad = |reason| KeySpecError::BadEntry { entry: i + 1, reason };
            let (kid, b64) = entry.split_once(':').ok_or(bad("expected kid:base64key"))?;
            let kid: u8 = kid.trim().parse().map_err(|_| bad("kid must be a number 1..=255"))?;
            if kid == 0 {
                return Err(bad("kid must be a number 1..=255"));
            }
            if keys.iter().any(|(k, _)| *k == kid) {
                return Err(bad("duplicate kid"));
            }
            let raw = STANDARD.decode(b64.trim()).map_err(|_| bad("key is not base64"))?;
            let key: [u8; 32] = raw.try_into().map_err(|_| bad("key must be 32 bytes"))?;
            keys.push((kid, key));
        }
        if keys.is_empty() {
            return Err(KeySpecError::Empty);
        }
        Ok(KeyRing { keys })
    }

    /// One random key (kid 1), for a single node without configured keys: tokens it mints are
    /// valid only on this process, which is all a lone node needs.
    pub fn random() -> KeyRing {
        KeyRing { keys: vec![(1, os_random())] }
    }

    /// A token for `sid` on `carrier`'s endpoint, valid until `exp_s` (Unix seconds).
    pub fn mint(&self, carrier: Carrier, sid: [u8; 16], exp_s: u32) -> String {
        let (kid, key) = self.signing_key();
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1] = kid;
        raw[2..6].copy_from_slice(&exp_s.to_be_bytes());
        raw[6..22].copy_from_slice(&sid);
        let tag = mac(key, carrier, &raw[..22]);
        raw[22..].copy_from_slice(&tag);
        hex::encode(raw)
    }

    /// Checks length, lowercase hex, version, known kid, `now−5 ≤ exp ≤ now+max_ttl_s`, then the
    /// MAC for `carrier` in constant time. Returns `(sid, exp)`; the caller still checks `sid` is
    /// unused and belongs to this call.
    pub fn verify(
        &self,
        token: &str,
        carrier: Carrier,
        now_s: i64,
        max_ttl_s: i64,
    ) -> Result<([u8; 16], u32), AuthError> {
        const WHAT: &str = "stream token";
        if token.len() != TOKEN_LEN || !token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(AuthError::Malformed(WHAT));
        }
        let mut raw = [0u8; RAW_LEN];
        hex::decode_to_slice(token, &mut raw).map_err(|_| AuthError::Malformed(WHAT))?;
        let [ver, kid, e0, e1, e2, e3, ref rest @ ..] = raw;
        if ver != VERSION {
            return Err(AuthError::Malformed(WHAT));
        }
        let key = self.keys.iter().find(|(k, _)| *k == kid).map(|(_, key)| key).ok_or(AuthError::UnknownKey)?;
        let exp = u32::from_be_bytes([e0, e1, e2, e3]);
        if i64::from(exp) < now_s.saturating_sub(EXPIRY_GRACE_S) {
            return Err(AuthError::Expired);
        }
        if i64::from(exp) > now_s.saturating_add(max_ttl_s) {
            return Err(AuthError::Stale);
        }
        let (signed, tag) = raw.split_at(22);
        if ct_eq(&mac(key, carrier, signed), tag) {
            let mut sid = [0u8; 16];
            sid.copy_from_slice(&rest[..16]);
            return Ok((sid, exp));
        }
        // Only on failure: tell a token minted for another endpoint apart from a forged one.
        let elsewhere = Carrier::ALL.iter().any(|&c| c != carrier && ct_eq(&mac(key, c, signed), tag));
        Err(if elsewhere { AuthError::WrongCarrier } else { AuthError::BadSignature })
    }

    fn signing_key(&self) -> (u8, &[u8; 32]) {
        // `from_spec` and `random` never build an empty ring.
        match self.keys.last() {
            Some((kid, key)) => (*kid, key),
            None => unreachable!("KeyRing is never empty"),
        }
    }
}

/// A fresh random session id to bind into a token.
pub fn random_sid() -> [u8; 16] {
    os_random()
}

fn mac(key: &[u8; 32], carrier: Carrier, signed: &[u8]) -> [u8; 16] {
    let full = hmac_sha256(key, &[DOMAIN, &[carrier as u8], signed]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

fn os_random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS source does not fail on supported platforms; if it ever does, a guessable key or
    // session id would be worse than stopping.
    if let Err(e) = getrandom::fill(&mut buf) {
        panic!("OS random source failed: {e}");
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const TTL: i64 = 300;

    fn vector_ring() -> KeyRing {
        let key: Vec<u8> = (0u8..32).collect();
        KeyRing::from_spec(&format!("1:{}", STANDARD.encode(key))).unwrap()
    }

    #[test]
    fn derived_vector() {
        let ring = vector_ring();
        let token = ring.mint(Carrier::Twilio, [0x11; 16], 1_700_000_060);
        assert_eq!(token, "01016553f13c11111111111111111111111111111111660d7675265ac76062959d27d0c4f0cd");
        assert_eq!(
            hex::encode([DOMAIN, &[1, 1, 1], &1_700_000_060u32.to_be_bytes()].concat()),
            "767367772d73747265616d2d7631000101016553f13c"
        );
        assert_eq!(ring.verify(&token, Carrier::Twilio, NOW, TTL), Ok(([0x11; 16], 1_700_000_060)));
    }

    #[test]
    fn expiry_window() {
        let ring = vector_ring();
        let token = ring.mint(Carrier::Plivo, [7; 16], 1_700_000_060);
        assert!(ring.verify(&token, Carrier::Plivo, NOW + 65, TTL).is_ok(), "5 s grace");
        assert_eq!(ring.verify(&token, Carrier::Plivo, NOW + 66, TTL), Err(AuthError::Expired));
        assert!(ring.verify(&token, Carrier::Plivo, NOW, 60).is_ok());
        assert_eq!(ring.verify(&token, Carrier::Plivo, NOW, 59), Err(AuthError::Stale));
    }

    #[test]
    fn bound_to_the_carrier() {
        let ring = vector_ring();
        let token = ring.mint(Carrier::Twilio, [0x11; 16], 1_700_000_060);
        for other in Carrier::ALL.into_iter().filter(|&c| c != Carrier::Twilio) {
            assert_eq!(ring.verify(&token, other, NOW, TTL), Err(AuthError::WrongCarrier), "{other:?}");
        }
    }

    #[test]
    fn tampering_is_caught() {
        let ring = vector_ring();
        let token = ring.mint(Carrier::Vonage, [0x22; 16], 1_700_000_060);
        // Flip one nibble in the sid, in the exp (still inside the window), and in the MAC.
        for pos in [20, 11, 70] {
            let mut t = token.clone().into_bytes();
            t[pos] = if t[pos] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(t).unwrap();
            assert_eq!(ring.verify(&t, Carrier::Vonage, NOW, TTL), Err(AuthError::BadSignature), "pos {pos}");
        }
        let other_key = KeyRing::from_spec(&format!("1:{}", STANDARD.encode([9u8; 32]))).unwrap();
        assert_eq!(other_key.verify(&token, Carrier::Vonage, NOW, TTL), Err(AuthError::BadSignature));
    }

    #[test]
    fn shape_errors() {
        let ring = vector_ring();
        let token = ring.mint(Carrier::Telnyx, [3; 16], 1_700_000_060);
        let malformed = AuthError::Malformed("stream token");
        assert_eq!(ring.verify(&token[..74], Carrier::Telnyx, NOW, TTL), Err(malformed));
        assert_eq!(ring.verify(&format!("{token}00"), Carrier::Telnyx, NOW, TTL), Err(malformed));
        assert_eq!(ring.verify(&token.to_uppercase(), Carrier::Telnyx, NOW, TTL), Err(malformed));
        assert_eq!(ring.verify(&format!("{}g", &token[..75]), Carrier::Telnyx, NOW, TTL), Err(malformed));
        assert_eq!(ring.verify(&format!("02{}", &token[2..]), Carrier::Telnyx, NOW, TTL), Err(malformed));
        assert_eq!(ring.verify(&format!("0102{}", &token[4..]), Carrier::Telnyx, NOW, TTL), Err(AuthError::UnknownKey));
        assert_eq!(ring.verify("", Carrier::Telnyx, NOW, TTL), Err(malformed));
        // Multi-byte UTF-8 of the right byte length must not panic.
        assert_eq!(ring.verify(&"é".repeat(38), Carrier::Telnyx, NOW, TTL), Err(malformed));
    }

    #[test]
    fn rotation_newest_signs_all_verify() {
        let old = format!("1:{}", STANDARD.encode([1u8; 32]));
        let new = format!("2:{}", STANDARD.encode([2u8; 32]));
        let before = KeyRing::from_spec(&old).unwrap();
        let after = KeyRing::from_spec(&format!("{old}, {new},")).unwrap();
        let old_token = before.mint(Carrier::Web, [5; 16], 1_700_000_060);
        let new_token = after.mint(Carrier::Web, [5; 16], 1_700_000_060);
        assert!(new_token.starts_with("0102"));
        assert_eq!(after.verify(&old_token, Carrier::Web, NOW, TTL), Ok(([5; 16], 1_700_000_060)));
        assert_eq!(after.verify(&new_token, Carrier::Web, NOW, TTL), Ok(([5; 16], 1_700_000_060)));
        assert_eq!(before.verify(&new_token, Carrier::Web, NOW, TTL), Err(AuthError::UnknownKey));
    }

    #[test]
    fn key_spec_errors_name_the_entry_and_hide_keys() {
        let good = STANDARD.encode([4u8; 32]);
        let short = STANDARD.encode([4u8; 31]);
        let cases = [
            ("".to_string(), KeySpecError::Empty),
            (" , ".to_string(), KeySpecError::Empty),
            (good.clone(), KeySpecError::BadEntry { entry: 1, reason: "expected kid:base64key" }),
            (format!("1:{good},0:{good}"), KeySpecError::BadEntry { entry: 2, reason: "kid must be a number 1..=255" }),
            (format!("256:{good}"), KeySpecError::BadEntry { entry: 1, reason: "kid must be a number 1..=255" }),
            (format!("1:{good},1:{good}"), KeySpecError::BadEntry { entry: 2, reason: "duplicate kid" }),
            (format!("1:{good},2:%%{good}"), KeySpecError::BadEntry { entry: 2, reason: "key is not base64" }),
            (format!("1:{short}"), KeySpecError::BadEntry { entry: 1, reason: "key must be 32 bytes" }),
        ];
        for (spec, want) in cases {
            let err = KeyRing::from_spec(&spec).unwrap_err();
            assert_eq!(err, want, "{spec}");
            assert!(!err.to_string().contains(&good[..8]) && !err.to_string().contains(&short[..8]));
        }
        let ring = KeyRing::from_spec(&format!("7:{good}")).unwrap();
        let debug = format!("{ring:?}");
        assert_eq!(debug, "KeyRing { kids: [7], .. }");
    }

    #[test]
    fn random_ring_and_sid_round_trip() {
        let ring = KeyRing::random();
        let sid = random_sid();
        assert_ne!(sid, random_sid());
        let token = ring.mint(Carrier::Asterisk, sid, 1_700_000_060);
        assert_eq!(ring.verify(&token, Carrier::Asterisk, NOW, TTL), Ok((sid, 1_700_000_060)));
        assert_eq!(KeyRing::random().verify(&token, Carrier::Asterisk, NOW, TTL), Err(AuthError::BadSignature));
    }

    #[test]
    fn gateway_names() {
        assert_eq!(Carrier::from_gateway("client"), Some(Carrier::Web));
        assert_eq!(Carrier::from_gateway("asterisk"), Some(Carrier::Asterisk));
        assert_eq!(Carrier::from_gateway("Twilio"), None);
        assert_eq!(Carrier::ALL.map(|c| c as u8), [1, 2, 3, 4, 0x10, 0x20]);
    }
}
