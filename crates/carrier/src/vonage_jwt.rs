//! Vonage application JWT: the Bearer token of every Voice API REST call. RS256 over
//! `{"alg":"RS256","typ":"JWT"}` and the claims `application_id`, `iat`, `jti` (UUIDv4) and
//! `exp = iat + 900`, signed with the application's RSA private key (PEM, PKCS#8 or PKCS#1), as
//! Vonage's own SDKs build it. A fresh token per request: it costs one RSA signature and the
//! unique `jti` keeps it from being replayed.

use crate::CarrierError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// How long a token is good for: the SDKs' default.
pub const LIFETIME_SECS: u64 = 900;
/// The longest lifetime Vonage accepts (24 h); the simulator refuses longer ones.
const MAX_LIFETIME_SECS: u64 = 24 * 3600;
/// Clock skew tolerated by the verifier.
const LEEWAY_SECS: u64 = 60;

// Written out rather than serialized so the header bytes are exactly the documented ones.
const HEADER_JSON: &str = r#"{"alg":"RS256","typ":"JWT"}"#;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppClaims {
    pub application_id: String,
    pub iat: u64,
    pub jti: String,
    pub exp: u64,
}

/// A token for `application_id`, issued at `iat` (Unix seconds; see [`now`]).
pub fn sign(application_id: &str, private_key_pem: &SecretString, iat: u64) -> Result<String, CarrierError> {
    let key = signing_key(private_key_pem).map_err(|_| CarrierError::Jwt)?;
    let claims = AppClaims {
        application_id: application_id.to_string(),
        iat,
        jti: uuid::Uuid::new_v4().to_string(),
        exp: iat.saturating_add(LIFETIME_SECS),
    };
    let claims = serde_json::to_vec(&claims).map_err(|_| CarrierError::Jwt)?;
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(HEADER_JSON), URL_SAFE_NO_PAD.encode(claims));
    let signature =
        jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::RS256).map_err(|_| CarrierError::Jwt)?;
    Ok(format!("{signing_input}.{signature}"))
}

pub(crate) fn signing_key(pem: &SecretString) -> jsonwebtoken::errors::Result<EncodingKey> {
    EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes())
}

/// The `application_id` a token claims, unverified: only to choose which public key to
/// verify it with.
pub fn claimed_application(token: &str) -> Option<String> {
    jsonwebtoken::dangerous::insecure_decode_claims::<AppClaims>(token).ok().map(|c| c.application_id)
}

/// Why the simulator refuses a token. Never shown to the client beyond "unauthorized".
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    PublicKey,
    Signature,
    Application,
    Lifetime,
}

/// Checks a token the way Vonage does: RS256 only, signature by `public_key_pem` (SPKI
/// `BEGIN PUBLIC KEY`), the expected application, `iat`/`exp` sane at `now`.
pub fn verify(token: &str, public_key_pem: &str, application_id: &str, now: u64) -> Result<AppClaims, Refused> {
    let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).map_err(|_| Refused::PublicKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    // `exp` is checked below against the caller's clock, so tests can pin time.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AppClaims>(token, &key, &validation).map_err(|_| Refused::Signature)?.claims;
    if claims.application_id != application_id {
        return Err(Refused::Application);
    }
    let fresh = claims.iat <= now.saturating_add(LEEWAY_SECS)
        && now <= claims.exp.saturating_add(LEEWAY_SECS)
        && claims.exp > claims.iat
        && claims.exp - claims.iat <= MAX_LIFETIME_SECS;
    if !fresh {
        return Err(Refused::Lifetime);
    }
    Ok(claims)
}

/// Unix seconds now; 0 on a clock before 1970 (which every verifier then refuses).
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE: &str = include_str!("../testdata/vonage-app.key");
    const PUBLIC: &str = include_str!("../testdata/vonage-app.pub");
    const OTHER_PRIVATE: &str = include_str!("../testdata/vonage-other.key");
    const T0: u64 = 1_700_000_000;

    fn part(token: &str, i: usize) -> serde_json::Value {
        let seg = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
    }

    #[test]
    fn round_trip_with_documented_header_and_claims() {
        let token = sign("app-1", &PRIVATE.into(), T0).unwrap();
        let header_b64 = token.split('.').next().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(header_b64).unwrap(), HEADER_JSON.as_bytes());
        let claims = part(&token, 1);
        assert_eq!(claims["exp"], T0 + 900);
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
        assert_eq!(claimed_application(&token).as_deref(), Some("app-1"));
        let verified = verify(&token, PUBLIC, "app-1", T0 + 10).unwrap();
        assert_eq!((verified.application_id.as_str(), verified.iat, verified.exp), ("app-1", T0, T0 + 900));
        // Two tokens of the same second differ by jti.
        assert_ne!(token, sign("app-1", &PRIVATE.into(), T0).unwrap());
    }

    #[test]
    fn refuses_wrong_key_app_time_and_tampering() {
        let other = sign("app-1", &OTHER_PRIVATE.into(), T0).unwrap();
        assert_eq!(verify(&other, PUBLIC, "app-1", T0), Err(Refused::Signature));
        let token = sign("app-1", &PRIVATE.into(), T0).unwrap();
        assert_eq!(verify(&token, PUBLIC, "app-2", T0), Err(Refused::Application));
        assert_eq!(verify(&token, PUBLIC, "app-1", T0 + 900 + 61), Err(Refused::Lifetime));
        assert_eq!(verify(&token, PUBLIC, "app-1", T0 - 61), Err(Refused::Lifetime));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"application_id":"app-1","iat":1,"jti":"x","exp":99999999999}"#);
        parts[1] = &forged;
        assert_eq!(verify(&parts.join("."), PUBLIC, "app-1", T0), Err(Refused::Signature));
        // alg:none with no signature.
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert_eq!(verify(&none, PUBLIC, "app-1", T0), Err(Refused::Signature));
        assert_eq!(verify(&token, "not a key", "app-1", T0), Err(Refused::PublicKey));
    }

    #[test]
    fn bad_private_key_is_a_typed_error() {
        let err =
            sign("app-1", &"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into(), T0).unwrap_err();
        assert_eq!(err.code(), "carrier_jwt");
    }
}
