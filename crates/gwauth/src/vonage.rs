//! Vonage signed webhooks: an HS256 JWT in `Authorization: Bearer`, keyed by the account's
//! signature secret (§3.4). Only HS256 is accepted, so `alg: none` or an RS* downgrade cannot
//! slip through; the MAC is checked before any claim is trusted.

use crate::mac::{ct_eq, hmac_sha256};
use crate::AuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "authorization";
/// Allowed distance between `iat` and our clock.
pub const MAX_SKEW_S: u64 = 300;

/// An HS256 JWT carrying `claims`, for callers that play Vonage (tests, our CLI).
pub fn sign_webhook(signature_secret: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mac = hmac_sha256(signature_secret.as_bytes(), &[header.as_bytes(), b".", payload.as_bytes()]);
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// Claims decoded WITHOUT verification, only to choose the tenant (`api_key` /
/// `application_id`) whose secret then goes to [`verify_webhook`]. Never trust them otherwise.
pub fn unverified_claims(jwt: &str) -> Result<Value, AuthError> {
    let (_, payload, _) = split(jwt)?;
    decode_object(payload, "jwt payload").map(Value::Object)
}

/// `alg` must be HS256; HMAC compared in constant time; `iat` within ±300 s of `now_s`; `exp`, if
/// present, not reached. With `body` (POST webhooks), the `payload_hash` claim must equal the
/// hex SHA-256 of the raw body (compared case-insensitively: its case is UNVERIFIED, §3.4).
/// Returns the verified claims.
pub fn verify_webhook(
    signature_secret: &str,
    authorization_header: Option<&str>,
    body: Option<&[u8]>,
    now_s: i64,
) -> Result<Value, AuthError> {
    let header = authorization_header.map(str::trim).filter(|h| !h.is_empty()).ok_or(AuthError::Missing(HEADER))?;
    let jwt = match header.split_once(' ') {
        Some((scheme, jwt)) if scheme.eq_ignore_ascii_case("bearer") => jwt.trim(),
        _ => return Err(AuthError::Malformed(HEADER)),
    };
    let (head, payload, sig) = split(jwt)?;
    let alg = decode_object(head, "jwt header")?.get("alg").cloned();
    if alg != Some(Value::from("HS256")) {
        return Err(AuthError::BadSignature);
    }
    let mac = hmac_sha256(signature_secret.as_bytes(), &[head.as_bytes(), b".", payload.as_bytes()]);
    if !ct_eq(URL_SAFE_NO_PAD.encode(mac).as_bytes(), sig.as_bytes()) {
        return Err(AuthError::BadSignature);
    }
    let claims = decode_object(payload, "jwt payload")?;
    let iat = numeric_date(&claims, "iat")?.ok_or(AuthError::Missing("iat"))?;
    if now_s.abs_diff(iat) > MAX_SKEW_S {
        return Err(AuthError::Stale);
    }
    if numeric_date(&claims, "exp")?.is_some_and(|exp| now_s >= exp) {
        return Err(AuthError::Expired);
    }
    if let Some(body) = body {
        let claimed = claims.get("payload_hash").and_then(Value::as_str).ok_or(AuthError::Missing("payload_hash"))?;
        let actual = hex::encode(Sha256::digest(body));
        if !ct_eq(claimed.to_ascii_lowercase().as_bytes(), actual.as_bytes()) {
            return Err(AuthError::BadSignature);
        }
    }
    Ok(Value::Object(claims))
}

/// `header.payload.signature`, exactly three parts.
fn split(jwt: &str) -> Result<(&str, &str, &str), AuthError> {
    let mut parts = jwt.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(AuthError::Malformed("jwt")),
    }
}

fn decode_object(part: &str, what: &'static str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| AuthError::Malformed(what))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthError::Malformed(what)),
    }
}

/// A NumericDate claim in whole seconds (fractions truncated); absent is `None`, any other type is
/// malformed.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f as i64))
            .map(Some)
            .ok_or(AuthError::Malformed(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "qwertyuiopasdfghjklzxcvbnm123456";
    const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJPbmxpbmUgSldUIEJ1aWxkZXIiLCJpYXQiOjE2OTc2MzQ2ODAsImV4cCI6MzMyNTQ1NDA4MjgsImF1ZCI6IiIsInN1YiI6IiJ9.88vJc3I2HhuqEDixHXVhc9R30tA6U_HQHZTC29y6CGM";
    const IAT: i64 = 1_697_634_680;

    fn bearer(jwt: &str) -> String {
        format!("Bearer {jwt}")
    }

    #[test]
    fn sdk_vector() {
        let claims = verify_webhook(SECRET, Some(&bearer(TOKEN)), None, IAT).unwrap();
        assert_eq!(claims["iss"], "Online JWT Builder");
        assert_eq!(verify_webhook("asdf", Some(&bearer(TOKEN)), None, IAT), Err(AuthError::BadSignature));
        assert_eq!(unverified_claims(TOKEN).unwrap()["iat"], IAT);
    }

    #[test]
    fn iat_window_and_exp() {
        assert_eq!(verify_webhook(SECRET, Some(&bearer(TOKEN)), None, IAT + 300).map(|_| ()), Ok(()));
        assert_eq!(verify_webhook(SECRET, Some(&bearer(TOKEN)), None, IAT + 301), Err(AuthError::Stale));
        assert_eq!(verify_webhook(SECRET, Some(&bearer(TOKEN)), None, IAT - 301), Err(AuthError::Stale));
        let expired = sign_webhook("s", &json!({"iat": 1000, "exp": 1060}));
        assert_eq!(verify_webhook("s", Some(&bearer(&expired)), None, 1059).map(|_| ()), Ok(()));
        assert_eq!(verify_webhook("s", Some(&bearer(&expired)), None, 1060), Err(AuthError::Expired));
        let no_iat = sign_webhook("s", &json!({"api_key": "k"}));
        assert_eq!(verify_webhook("s", Some(&bearer(&no_iat)), None, 1000), Err(AuthError::Missing("iat")));
        let text_iat = sign_webhook("s", &json!({"iat": "1000"}));
        assert_eq!(verify_webhook("s", Some(&bearer(&text_iat)), None, 1000), Err(AuthError::Malformed("iat")));
    }

    #[test]
    fn alg_none_and_rs256_are_rejected() {
        let payload = URL_SAFE_NO_PAD.encode(json!({"iat": IAT}).to_string());
        for alg in ["none", "RS256", "HS512"] {
            let head = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
            // Even with a correct HS256 MAC over the parts, the declared alg decides.
            let mac =
                URL_SAFE_NO_PAD.encode(hmac_sha256(SECRET.as_bytes(), &[head.as_bytes(), b".", payload.as_bytes()]));
            for sig in ["", mac.as_str()] {
                let jwt = format!("{head}.{payload}.{sig}");
                assert_eq!(
                    verify_webhook(SECRET, Some(&bearer(&jwt)), None, IAT),
                    Err(AuthError::BadSignature),
                    "{alg}"
                );
            }
        }
    }

    #[test]
    fn payload_hash_binds_the_body() {
        let body = br#"{"from":"15550001111","to":"15550002222","uuid":"u1"}"#;
        let hash = hex::encode(Sha256::digest(body));
        let jwt = sign_webhook("s", &json!({"iat": 1000, "api_key": "k", "payload_hash": hash}));
        let claims = verify_webhook("s", Some(&bearer(&jwt)), Some(body), 1000).unwrap();
        assert_eq!(claims["api_key"], "k");
        assert_eq!(verify_webhook("s", Some(&bearer(&jwt)), Some(b"{}"), 1000), Err(AuthError::BadSignature));
        let upper = sign_webhook("s", &json!({"iat": 1000, "payload_hash": hash.to_uppercase()}));
        assert_eq!(verify_webhook("s", Some(&bearer(&upper)), Some(body), 1000).map(|_| ()), Ok(()));
        let unhashed = sign_webhook("s", &json!({"iat": 1000}));
        assert_eq!(
            verify_webhook("s", Some(&bearer(&unhashed)), Some(body), 1000),
            Err(AuthError::Missing("payload_hash"))
        );
    }

    #[test]
    fn header_and_shape_errors() {
        assert_eq!(verify_webhook(SECRET, None, None, IAT), Err(AuthError::Missing(HEADER)));
        assert_eq!(verify_webhook(SECRET, Some(" "), None, IAT), Err(AuthError::Missing(HEADER)));
        assert_eq!(verify_webhook(SECRET, Some(TOKEN), None, IAT), Err(AuthError::Malformed(HEADER)));
        assert_eq!(
            verify_webhook(SECRET, Some(&format!("Basic {TOKEN}")), None, IAT),
            Err(AuthError::Malformed(HEADER))
        );
        assert_eq!(verify_webhook(SECRET, Some("Bearer a.b"), None, IAT), Err(AuthError::Malformed("jwt")));
        assert_eq!(
            verify_webhook(SECRET, Some(&bearer(&format!("{TOKEN}.x"))), None, IAT),
            Err(AuthError::Malformed("jwt"))
        );
        assert_eq!(verify_webhook(SECRET, Some("Bearer !.e30.x"), None, IAT), Err(AuthError::Malformed("jwt header")));
        assert_eq!(unverified_claims("e30.W10.x"), Err(AuthError::Malformed("jwt payload")));
        // One claim changed, signature kept.
        let (h, _, s) = split(TOKEN).unwrap();
        let forged = format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode(json!({"iat": IAT, "api_key": "other"}).to_string()));
        assert_eq!(verify_webhook(SECRET, Some(&bearer(&forged)), None, IAT), Err(AuthError::BadSignature));
        assert_eq!(unverified_claims(&forged).unwrap()["api_key"], "other");
    }

    #[test]
    fn round_trip() {
        let claims =
            json!({"iat": 1_700_000_000, "exp": 1_700_000_900, "api_key": "abc123", "application_id": "app-1"});
        let jwt = sign_webhook("sig-secret", &claims);
        assert_eq!(unverified_claims(&jwt).unwrap(), claims);
        assert_eq!(verify_webhook("sig-secret", Some(&bearer(&jwt)), None, 1_700_000_010).unwrap(), claims);
        assert_eq!(
            verify_webhook("sig-secreT", Some(&bearer(&jwt)), None, 1_700_000_010),
            Err(AuthError::BadSignature)
        );
    }
}
