//! The one-string AWS key (`ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`) and the region
//! an endpoint URL implies.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::str::FromStr;
use url::Url;

/// Region used when neither the host nor a `region` query parameter names one (AWS's own
/// default partition region, and what the simulators sign for).
pub const DEFAULT_REGION: &str = "us-east-1";

/// An AWS key pair, optionally with an STS session token. `Debug` shows only the access key id,
/// which AWS itself treats as non-secret (it travels in clear in every `Credential=` scope).
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
}

/// Why a key string is not `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`. Never carries
/// any part of the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("AWS key must be ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]")]
    Format,
    #[error("AWS access key id must be non-empty ASCII letters and digits")]
    AccessKeyId,
    #[error("AWS secret access key is empty")]
    EmptySecret,
}

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: SecretString::from(secret_access_key.into()),
            session_token: session_token.map(SecretString::from),
        }
    }

    /// Parses the provider key string. Secrets may contain any character but `:` (AWS secrets
    /// are base64-ish: `/` and `+` occur); session tokens may be long base64 and are kept whole.
    /// Also takes the JSON object orgs save through the credentials API
    /// (`{"accessKeyId", "secretAccessKey", "sessionToken"?}`).
    pub fn parse(key: &str) -> Result<Self, CredentialsError> {
        let key = key.trim();
        if key.starts_with('{') {
            return Self::parse_json(key);
        }
        let mut parts = key.splitn(3, ':');
        let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
            return Err(CredentialsError::Format);
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CredentialsError::AccessKeyId);
        }
        if secret.is_empty() {
            return Err(CredentialsError::EmptySecret);
        }
        let token = match parts.next() {
            None => None,
            Some("") => return Err(CredentialsError::Format),
            Some(t) => Some(t.to_string()),
        };
        Ok(Self::new(id, secret, token))
    }

    fn parse_json(key: &str) -> Result<Self, CredentialsError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Saved {
            access_key_id: String,
            secret_access_key: String,
            #[serde(default)]
            session_token: Option<String>,
        }
        let saved: Saved = serde_json::from_str(key).map_err(|_| CredentialsError::Format)?;
        let token = saved.session_token.filter(|t| !t.is_empty()).map(|t| format!(":{t}")).unwrap_or_default();
        Self::parse(&format!("{}:{}{token}", saved.access_key_id, saved.secret_access_key))
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn secret_access_key(&self) -> &str {
        self.secret_access_key.expose_secret()
    }

    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_ref().map(|t| t.expose_secret())
    }
}

impl FromStr for Credentials {
    type Err = CredentialsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The region an endpoint URL addresses.
///
/// AWS hosts are `{service}.{region}.amazonaws.com` (also `.amazonaws.com.cn`, and FIPS/dualstack
/// forms such as `polly-fips.us-east-1.amazonaws.com`, `bedrock-runtime.us-west-2.api.aws`): the
/// label right before the domain suffix is the region. Anything else (a simulator on
/// `127.0.0.1`, a proxy) takes the `region` query parameter, else [`DEFAULT_REGION`].
pub fn region_from_url(url: &Url) -> String {
    if let Some(region) = url.host_str().and_then(region_from_host) {
        return region.to_string();
    }
    url.query_pairs()
        .find(|(k, v)| k == "region" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// The region label of an AWS host name, if it is one.
pub fn region_from_host(host: &str) -> Option<&str> {
    let host = host.trim_end_matches('.');
    let rest = ["amazonaws.com.cn", "amazonaws.com", "api.aws"]
        .iter()
        .find_map(|suffix| host.strip_suffix(suffix)?.strip_suffix('.'))?;
    let mut labels = rest.rsplit('.');
    let mut region = labels.next()?;
    if region == "dualstack" {
        region = labels.next()?;
    }
    // A global endpoint (`sts.amazonaws.com`) has just the service label.
    labels.next()?;
    looks_like_region(region).then_some(region)
}

fn looks_like_region(s: &str) -> bool {
    // us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-4 …
    let mut parts = s.split('-');
    let (Some(first), Some(last)) = (parts.next(), s.rsplit('-').next()) else {
        return false;
    };
    s.matches('-').count() >= 2
        && first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pair_and_token_and_hides_secrets() {
        let c = Credentials::parse("AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").unwrap();
        assert_eq!(c.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(c.secret_access_key(), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert_eq!(c.session_token(), None);
        let dbg = format!("{c:?}");
        assert!(dbg.contains("AKIDEXAMPLE") && !dbg.contains("EXAMPLEKEY"), "{dbg}");

        let t = Credentials::parse("AKID:sec:tok/en+=").unwrap();
        assert_eq!(t.session_token(), Some("tok/en+="));
        assert!(!format!("{t:?}").contains("tok/en"));
    }

    #[test]
    fn rejects_malformed_keys() {
        assert_eq!(Credentials::parse("justone").unwrap_err(), CredentialsError::Format);
        assert_eq!(Credentials::parse(":secret").unwrap_err(), CredentialsError::AccessKeyId);
        assert_eq!(Credentials::parse("AK ID:secret").unwrap_err(), CredentialsError::AccessKeyId);
        assert_eq!(Credentials::parse("AKID:").unwrap_err(), CredentialsError::EmptySecret);
        assert_eq!(Credentials::parse("AKID:s:").unwrap_err(), CredentialsError::Format);
        assert!(!CredentialsError::Format.to_string().contains("AKID"));
    }

    #[test]
    fn region_from_aws_hosts_and_fallbacks() {
        let r = |u: &str| region_from_url(&Url::parse(u).unwrap());
        assert_eq!(r("wss://transcribestreaming.us-east-1.amazonaws.com:8443"), "us-east-1");
        assert_eq!(r("https://polly.eu-west-2.amazonaws.com/v1/speech"), "eu-west-2");
        assert_eq!(r("https://bedrock-runtime.us-gov-west-1.amazonaws.com"), "us-gov-west-1");
        assert_eq!(r("https://polly.cn-north-1.amazonaws.com.cn"), "cn-north-1");
        assert_eq!(r("https://bedrock-runtime.ap-southeast-2.api.aws"), "ap-southeast-2");
        assert_eq!(r("https://s3.dualstack.us-west-2.amazonaws.com"), "us-west-2");
        assert_eq!(r("https://sts.amazonaws.com"), "us-east-1");
        assert_eq!(r("ws://127.0.0.1:4000?region=eu-central-1"), "eu-central-1");
        assert_eq!(r("http://127.0.0.1:4000/"), "us-east-1");
    }

    #[test]
    fn the_saved_json_object_parses_like_the_key_string() {
        let c = Credentials::parse(r#"{"accessKeyId":"AKIDEXAMPLE","secretAccessKey":"s3cr/t+","region":"eu-west-1"}"#)
            .unwrap();
        assert_eq!((c.access_key_id(), c.secret_access_key(), c.session_token()), ("AKIDEXAMPLE", "s3cr/t+", None));
        assert!(Credentials::parse(r#"{"accessKeyId":"AKID"}"#).is_err());
    }
}
