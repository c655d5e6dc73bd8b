//! The two HMACs the carriers use, and the one comparison every verifier goes through.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// HMAC-SHA1 over the concatenation of `parts` (Twilio).
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    run(new_mac::<Sha1>(key), parts).into()
}

/// HMAC-SHA256 over the concatenation of `parts` (Plivo, Vonage, stream tokens).
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    run(new_mac::<Sha256>(key), parts).into()
}

fn new_mac<D: hmac::EagerHash>(key: &[u8]) -> Hmac<D> {
    match Hmac::<D>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; the Result only exists for the generic KeyInit trait.
        Err(_) => unreachable!("HMAC takes any key length"),
    }
}

fn run<D: hmac::EagerHash>(mut mac: Hmac<D>, parts: &[&[u8]]) -> hmac::digest::Output<Hmac<D>> {
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes()
}

/// Constant time in the contents; a length mismatch returns early, which leaks nothing secret
/// since signature lengths are public (§0.3).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
