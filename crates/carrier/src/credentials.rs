//! A tenant's carrier credentials, as the vault stores them: one camelCase JSON object per
//! carrier. Secrets live in `SecretString` from the moment they are parsed, so `Debug`, logs and
//! errors can only ever show the account id.

use crate::{Carrier, CarrierError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Clone)]
pub enum Credentials {
    /// Basic auth `accountSid:authToken`.
    Twilio { account_sid: String, auth_token: SecretString },
    /// `publicKey` is the Ed25519 webhook key (not secret); `apiKey` is the REST Bearer key.
    Telnyx { public_key: String, api_key: SecretString },
    /// Basic auth `authId:authToken`.
    Plivo { auth_id: String, auth_token: SecretString },
    /// REST calls carry an RS256 JWT signed with `privateKey` (PEM); `signatureSecret` is the
    /// HS256 key of Vonage's signed webhooks.
    Vonage { application_id: String, private_key: SecretString, signature_secret: SecretString },
}

/// What is wrong with a vault JSON object. Names fields, never values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsProblem {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("field {0} is not a string")]
    NotAString(&'static str),
    #[error("field {0} is empty")]
    Empty(&'static str),
    #[error("privateKey is not a PEM RSA private key")]
    NotAnRsaKey,
}

impl Credentials {
    /// Parses the vault JSON of `carrier` (`twilio`, `telnyx`, `plivo`, `vonage`). Unknown
    /// fields are ignored, so the vault may keep more than we use.
    pub fn parse(carrier: &str, json: &str) -> Result<Self, CarrierError> {
        let carrier = Carrier::from_name(carrier).ok_or_else(|| CarrierError::UnknownCarrier(carrier.to_string()))?;
        let invalid = |p| CarrierError::InvalidCredentials(carrier, p);
        // A syntax error's message has only a line and column, but we drop it anyway: bland.
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(json) else {
            return Err(invalid(CredentialsProblem::NotAnObject));
        };
        let field = |name| text(&obj, name).map_err(invalid);
        Ok(match carrier {
            Carrier::Twilio => {
                Self::Twilio { account_sid: field("accountSid")?, auth_token: field("authToken")?.into() }
            }
            Carrier::Telnyx => Self::Telnyx { public_key: field("publicKey")?, api_key: field("apiKey")?.into() },
            Carrier::Plivo => Self::Plivo { auth_id: field("authId")?, auth_token: field("authToken")?.into() },
            Carrier::Vonage => {
                let application_id = field("applicationId")?;
                let private_key = SecretString::from(field("privateKey")?);
                let signature_secret = field("signatureSecret")?.into();
                // Found now, at save time, rather than on the first hang-up.
                if crate::vonage_jwt::signing_key(&private_key).is_err() {
                    return Err(invalid(CredentialsProblem::NotAnRsaKey));
                }
                Self::Vonage { application_id, private_key, signature_secret }
            }
        })
    }

    pub fn carrier(&self) -> Carrier {
        match self {
            Self::Twilio { .. } => Carrier::Twilio,
            Self::Telnyx { .. } => Carrier::Telnyx,
            Self::Plivo { .. } => Carrier::Plivo,
            Self::Vonage { .. } => Carrier::Vonage,
        }
    }

    /// The secret whose last four characters the dashboard shows so an admin can tell which
    /// key is saved. The caller masks it; this is the one place it leaves the type as text.
    pub fn secret_field(&self) -> &str {
        match self {
            Self::Twilio { auth_token: s, .. } | Self::Plivo { auth_token: s, .. } => s.expose_secret(),
            Self::Telnyx { api_key, .. } => api_key.expose_secret(),
            Self::Vonage { signature_secret, .. } => signature_secret.expose_secret(),
        }
    }

    /// The non-secret id that names the tenant's account at the carrier (and picks its
    /// credentials when a webhook arrives).
    pub fn account_id(&self) -> &str {
        match self {
            Self::Twilio { account_sid: id, .. }
            | Self::Telnyx { public_key: id, .. }
            | Self::Plivo { auth_id: id, .. }
            | Self::Vonage { application_id: id, .. } => id,
        }
    }
}

fn text(obj: &Map<String, Value>, name: &'static str) -> Result<String, CredentialsProblem> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(CredentialsProblem::Missing(name)),
        Some(Value::String(s)) if s.is_empty() => Err(CredentialsProblem::Empty(name)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(CredentialsProblem::NotAString(name)),
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = format_args!("[REDACTED]");
        match self {
            Self::Twilio { account_sid, .. } => {
                f.debug_struct("Twilio").field("account_sid", account_sid).field("auth_token", &redacted).finish()
            }
            Self::Telnyx { public_key, .. } => {
                f.debug_struct("Telnyx").field("public_key", public_key).field("api_key", &redacted).finish()
            }
            Self::Plivo { auth_id, .. } => {
                f.debug_struct("Plivo").field("auth_id", auth_id).field("auth_token", &redacted).finish()
            }
            Self::Vonage { application_id, .. } => f
                .debug_struct("Vonage")
                .field("application_id", application_id)
                .field("private_key", &redacted)
                .field("signature_secret", &redacted)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVATE_PEM: &str = include_str!("../testdata/vonage-app.key");

    fn problem(carrier: &str, json: &str) -> CredentialsProblem {
        match Credentials::parse(carrier, json) {
            Err(CarrierError::InvalidCredentials(_, p)) => p,
            other => panic!("expected invalid credentials, got {other:?}"),
        }
    }

    #[test]
    fn parses_each_carrier_and_picks_id_and_secret() {
        let cases = [
            ("twilio", r#"{"accountSid":"AC1","authToken":"tok-1234"}"#, "AC1", "tok-1234"),
            ("telnyx", r#"{"publicKey":"pk=","apiKey":"KEY0123","extra":1}"#, "pk=", "KEY0123"),
            ("plivo", r#"{"authId":"MA1","authToken":"pt-9876"}"#, "MA1", "pt-9876"),
        ];
        for (carrier, json, id, secret) in cases {
            let c = Credentials::parse(carrier, json).unwrap();
            assert_eq!((c.carrier().as_str(), c.account_id(), c.secret_field()), (carrier, id, secret));
        }
        let json =
            serde_json::json!({"applicationId": "app-1", "privateKey": PRIVATE_PEM, "signatureSecret": "sig-5555"});
        let c = Credentials::parse("vonage", &json.to_string()).unwrap();
        assert_eq!((c.account_id(), c.secret_field()), ("app-1", "sig-5555"));
    }

    #[test]
    fn names_the_missing_or_bad_field() {
        assert_eq!(problem("twilio", r#"{"accountSid":"AC1"}"#), CredentialsProblem::Missing("authToken"));
        assert_eq!(problem("telnyx", r#"{"apiKey":"k"}"#), CredentialsProblem::Missing("publicKey"));
        assert_eq!(problem("plivo", r#"{"authId":"MA1","authToken":""}"#), CredentialsProblem::Empty("authToken"));
        assert_eq!(problem("plivo", r#"{"authId":7,"authToken":"x"}"#), CredentialsProblem::NotAString("authId"));
        assert_eq!(problem("twilio", "[]"), CredentialsProblem::NotAnObject);
        assert_eq!(problem("twilio", "{not json"), CredentialsProblem::NotAnObject);
        let no_key = r#"{"applicationId":"a","privateKey":"not a pem","signatureSecret":"s"}"#;
        assert_eq!(problem("vonage", no_key), CredentialsProblem::NotAnRsaKey);
        let err = Credentials::parse("twilio", r#"{"accountSid":"AC1"}"#).unwrap_err();
        assert_eq!(err.to_string(), "twilio credentials: missing field authToken");
        assert_eq!(err.code(), "carrier_invalid_credentials");
        let err = Credentials::parse("sinch", "{}").unwrap_err();
        assert_eq!(err.code(), "unknown_carrier");
    }

    #[test]
    fn debug_shows_ids_not_secrets() {
        let c = Credentials::parse("twilio", r#"{"accountSid":"AC1","authToken":"hunter2-secret"}"#).unwrap();
        let shown = format!("{c:?}");
        assert_eq!(shown, r#"Twilio { account_sid: "AC1", auth_token: [REDACTED] }"#);
        let json =
            serde_json::json!({"applicationId": "app-1", "privateKey": PRIVATE_PEM, "signatureSecret": "sig-5555"});
        let shown = format!("{:?}", Credentials::parse("vonage", &json.to_string()).unwrap());
        assert!(!shown.contains("sig-5555") && !shown.contains("PRIVATE KEY"), "{shown}");
    }
}
