//! Simulator side of SigV4: recompute a received request's signature with the secret of the
//! access key it names and refuse it the way AWS does.

use crate::sigv4::{self, canonical_headers, canonical_query, canonical_uri, parse_query, HmacSha256, ALGORITHM};
use crate::{AmzDate, Credentials};
use hmac::{KeyInit, Mac};
use std::time::SystemTime;

/// How far a header-form `X-Amz-Date` may be from the server clock, as AWS allows.
pub const MAX_CLOCK_SKEW_SECS: u64 = 5 * 60;

/// Header carrying the error code in AWS JSON protocols (restJson1 / awsJson).
pub const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// A request as the simulator received it.
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'a> {
    pub method: &'a str,
    /// The path exactly as on the wire (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?` (empty if none).
    pub query: &'a str,
    /// Every received header; names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body received ([`sigv4::EMPTY_PAYLOAD_SHA256`] for a GET/upgrade).
    pub payload_sha256: &'a str,
}

/// What a valid signature proved.
#[derive(Debug, Clone)]
pub struct Verified {
    pub credentials: Credentials,
    /// Region from the credential scope.
    pub region: String,
}

/// Why a request is refused, named by the AWS error code it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header and no presigned query.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// Signature parts missing or malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// Access key id (or session token) unknown.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// Recomputed signature differs (wrong secret, tampering, different canonicalization).
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS \
         Secret Access Key and signing method. Consult the service documentation for details."
    )]
    InvalidSignature,
    /// Signature outside its validity window.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - 5 min.)")]
    SignatureExpired { signed: String, earliest: String, now: String },
    /// Signed for another service (e.g. a `bedrock` scope sent to Polly).
    #[error("Credential should be scoped to correct service: '{0}'. ")]
    WrongService(String),
}

impl AuthError {
    /// HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::IncompleteSignature(_) => 400,
            _ => 403,
        }
    }

    /// The AWS error code (`x-amzn-ErrorType` / `__type`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::InvalidSignature | AuthError::SignatureExpired { .. } | AuthError::WrongService(_) => {
                "InvalidSignatureException"
            }
        }
    }

    /// Value of the [`ERROR_TYPE_HEADER`] as AWS's front end writes it (code plus coral suffix,
    /// which SDKs strip).
    pub fn error_type_header(&self) -> String {
        format!("{}:http://internal.amazon.com/coral/com.amazon.coral.service/", self.code())
    }

    /// JSON error body of the AWS JSON protocols: `{"__type":"…","message":"…"}`.
    pub fn json_body(&self) -> String {
        format!(r#"{{"__type":"{}","message":"{}"}}"#, self.code(), json_escape(&self.to_string()))
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn header<'a>(req: &IncomingRequest<'a>, name: &str) -> Option<&'a str> {
    req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// Verifies either signature form (header or presigned query) of `req` for `service`.
/// `lookup` maps an access key id to the credentials the simulator accepts for it; when those
/// carry a session token the request must present the same one.
pub fn verify(
    req: &IncomingRequest<'_>,
    service: &str,
    now: SystemTime,
    lookup: impl Fn(&str) -> Option<Credentials>,
) -> Result<Verified, AuthError> {
    let query =
        parse_query(req.query).ok_or_else(|| AuthError::IncompleteSignature("Malformed query string.".into()))?;
    if let Some(auth) = header(req, "authorization") {
        verify_header_form(req, auth, &query, service, now, &lookup)
    } else if query.iter().any(|(k, _)| k == "X-Amz-Algorithm") {
        verify_query_form(req, &query, service, now, &lookup)
    } else {
        Err(AuthError::MissingAuthenticationToken)
    }
}

struct Parsed<'a> {
    akid: &'a str,
    scope_date: &'a str,
    region: &'a str,
    scope_service: &'a str,
    scope: String,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_credential<'a>(
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
) -> Result<Parsed<'a>, AuthError> {
    let mut parts = credential.splitn(2, '/');
    let akid = parts.next().unwrap_or_default();
    let scope = parts.next().unwrap_or_default();
    let fields: Vec<&str> = scope.split('/').collect();
    let [scope_date, region, scope_service, terminator] = fields.as_slice() else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if *terminator != "aws4_request" || akid.is_empty() {
        return Err(AuthError::IncompleteSignature("Credential scope must end with aws4_request.".into()));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::IncompleteSignature("Signature must be 64 hex characters.".into()));
    }
    Ok(Parsed {
        akid,
        scope_date,
        region,
        scope_service,
        scope: scope.to_string(),
        signed_headers: signed_headers.split(';').filter(|s| !s.is_empty()).collect(),
        signature,
    })
}

fn check_common(
    p: &Parsed<'_>,
    at: AmzDate,
    service: &str,
    token: Option<&str>,
    lookup: &impl Fn(&str) -> Option<Credentials>,
) -> Result<Credentials, AuthError> {
    let creds = lookup(p.akid).ok_or(AuthError::UnrecognizedClient)?;
    if creds.session_token().is_some() && creds.session_token() != token {
        return Err(AuthError::UnrecognizedClient);
    }
    if p.scope_service != service {
        return Err(AuthError::WrongService(service.to_string()));
    }
    if p.scope_date != at.date() {
        return Err(AuthError::InvalidSignature);
    }
    if !p.signed_headers.contains(&"host") {
        return Err(AuthError::InvalidSignature);
    }
    Ok(creds)
}

fn check_signature(creds: &Credentials, p: &Parsed<'_>, at: AmzDate, canonical_request: &str) -> Result<(), AuthError> {
    let key = sigv4::signing_key(creds.secret_access_key(), p.scope_date, p.region, p.scope_service);
    let sts = sigv4::string_to_sign(at, &p.scope, canonical_request);
    let expected = hex::decode(p.signature).map_err(|_| AuthError::InvalidSignature)?;
    let mut mac = HmacSha256::new_from_slice(&key).map_err(|_| AuthError::InvalidSignature)?;
    mac.update(sts.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&expected).map_err(|_| AuthError::InvalidSignature)
}

fn signed_header_values<'a>(
    req: &IncomingRequest<'a>,
    names: &[&'a str],
) -> Result<Vec<(&'a str, &'a str)>, AuthError> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut found = false;
        for (n, v) in req.headers {
            if n.eq_ignore_ascii_case(name) {
                out.push((*name, *v));
                found = true;
            }
        }
        if !found {
            return Err(AuthError::InvalidSignature);
        }
    }
    Ok(out)
}

/// The canonical request SigV4 signs; the header and query forms differ only in `query`.
fn canonical_request<'a, 'q>(
    req: &IncomingRequest<'a>,
    p: &Parsed<'a>,
    query: impl Iterator<Item = (&'q str, &'q str)>,
) -> Result<String, AuthError> {
    let (canon_headers, names) = canonical_headers(signed_header_values(req, &p.signed_headers)?);
    Ok(format!(
        "{}\n{}\n{}\n{canon_headers}\n{names}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        canonical_query(query),
        req.payload_sha256,
    ))
}

fn expired(at: AmzDate, now: AmzDate) -> AuthError {
    AuthError::SignatureExpired {
        signed: at.to_string(),
        earliest: AmzDate::from_unix_secs(now.unix_secs().saturating_sub(MAX_CLOCK_SKEW_SECS)).to_string(),
        now: now.to_string(),
    }
}

fn verify_header_form(
    req: &IncomingRequest<'_>,
    auth: &str,
    query: &[(String, String)],
    service: &str,
    now: SystemTime,
    lookup: &impl Fn(&str) -> Option<Credentials>,
) -> Result<Verified, AuthError> {
    let rest = auth.strip_prefix(ALGORITHM).filter(|r| r.starts_with(' ')).ok_or_else(|| {
        AuthError::IncompleteSignature(format!("Authorization header requires the {ALGORITHM} algorithm."))
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else { continue };
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(AuthError::IncompleteSignature(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.".into(),
        ));
    };
    let p = parse_credential(credential, signed, signature)?;
    let date = header(req, "x-amz-date").ok_or_else(|| {
        AuthError::IncompleteSignature("Authorization header requires existence of an 'X-Amz-Date' header.".into())
    })?;
    let at = AmzDate::parse(date)
        .ok_or_else(|| AuthError::IncompleteSignature("X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z'.".into()))?;
    let creds = check_common(&p, at, service, header(req, "x-amz-security-token"), lookup)?;
    let now = AmzDate::from_system_time(now);
    if at.unix_secs().abs_diff(now.unix_secs()) > MAX_CLOCK_SKEW_SECS {
        return Err(expired(at, now));
    }
    let canonical = canonical_request(req, &p, query.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    check_signature(&creds, &p, at, &canonical)?;
    Ok(Verified { region: p.region.to_string(), credentials: creds })
}

fn verify_query_form(
    req: &IncomingRequest<'_>,
    query: &[(String, String)],
    service: &str,
    now: SystemTime,
    lookup: &impl Fn(&str) -> Option<Credentials>,
) -> Result<Verified, AuthError> {
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let missing = |name: &str| {
        AuthError::IncompleteSignature(format!("Query-string authentication requires the {name} parameter."))
    };
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(AuthError::IncompleteSignature(format!("X-Amz-Algorithm only supports {ALGORITHM}.")));
    }
    let credential = get("X-Amz-Credential").ok_or_else(|| missing("X-Amz-Credential"))?;
    let signed = get("X-Amz-SignedHeaders").ok_or_else(|| missing("X-Amz-SignedHeaders"))?;
    let signature = get("X-Amz-Signature").ok_or_else(|| missing("X-Amz-Signature"))?;
    let date = get("X-Amz-Date").ok_or_else(|| missing("X-Amz-Date"))?;
    let expires: u64 = get("X-Amz-Expires")
        .ok_or_else(|| missing("X-Amz-Expires"))?
        .parse()
        .map_err(|_| AuthError::IncompleteSignature("X-Amz-Expires should be a number.".into()))?;
    let at = AmzDate::parse(date)
        .ok_or_else(|| AuthError::IncompleteSignature("X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z'.".into()))?;
    let p = parse_credential(credential, signed, signature)?;
    let creds = check_common(&p, at, service, get("X-Amz-Security-Token"), lookup)?;
    let now = AmzDate::from_system_time(now);
    let (start, end) = (at.unix_secs(), at.unix_secs().saturating_add(expires));
    if now.unix_secs().saturating_add(MAX_CLOCK_SKEW_SECS) < start
        || now.unix_secs() > end.saturating_add(MAX_CLOCK_SKEW_SECS)
    {
        return Err(expired(at, now));
    }
    let unsigned = query.iter().filter(|(k, _)| k != "X-Amz-Signature");
    let canonical = canonical_request(req, &p, unsigned.map(|(k, v)| (k.as_str(), v.as_str())))?;
    check_signature(&creds, &p, at, &canonical)?;
    Ok(Verified { region: p.region.to_string(), credentials: creds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::{Signer, EMPTY_PAYLOAD_SHA256};
    use url::Url;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn accepted(akid: &str) -> Option<Credentials> {
        (akid == "AKIDEXAMPLE").then(|| Credentials::new("AKIDEXAMPLE", SECRET, None))
    }

    fn at() -> AmzDate {
        AmzDate::parse("20150830T123600Z").unwrap()
    }

    fn post(signer: &Signer, body: &[u8]) -> (Url, Vec<(String, String)>) {
        let url = Url::parse("https://polly.us-east-1.amazonaws.com/v1/speech?x=a%20b").unwrap();
        let signed = signer.sign("POST", &url, &[("content-type", "application/json")], body, at());
        let mut headers = vec![
            ("Host".to_string(), "polly.us-east-1.amazonaws.com".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
            ("User-Agent".to_string(), "unsigned".to_string()),
        ];
        headers.extend(signed.pairs().map(|(n, v)| (n.to_string(), v.to_string())));
        (url, headers)
    }

    fn check(
        url: &Url,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
        service: &str,
    ) -> Result<Verified, AuthError> {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let hash = sigv4::sha256_hex(body);
        let req = IncomingRequest {
            method,
            path: url.path(),
            query: url.query().unwrap_or_default(),
            headers: &hs,
            payload_sha256: &hash,
        };
        verify(&req, service, at().to_system_time(), accepted)
    }

    #[test]
    fn header_form_round_trip_and_refusals() {
        let good = Signer::new(Credentials::new("AKIDEXAMPLE", SECRET, None), "us-east-1", "polly");
        let (url, headers) = post(&good, b"{}");
        let v = check(&url, "POST", &headers, b"{}", "polly").unwrap();
        assert_eq!((v.credentials.access_key_id(), v.region.as_str()), ("AKIDEXAMPLE", "us-east-1"));

        let e = check(&url, "POST", &headers, b"{ }", "polly").unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "InvalidSignatureException"));
        assert_eq!(check(&url, "POST", &headers, b"{}", "bedrock").unwrap_err().code(), "InvalidSignatureException");

        let wrong_secret = Signer::new(Credentials::new("AKIDEXAMPLE", "nope", None), "us-east-1", "polly");
        let (url, headers) = post(&wrong_secret, b"{}");
        assert_eq!(check(&url, "POST", &headers, b"{}", "polly").unwrap_err(), AuthError::InvalidSignature);

        let unknown = Signer::new(Credentials::new("AKIDOTHER", SECRET, None), "us-east-1", "polly");
        let (url, headers) = post(&unknown, b"{}");
        let e = check(&url, "POST", &headers, b"{}", "polly").unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "UnrecognizedClientException"));
        assert_eq!(
            e.json_body(),
            r#"{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}"#
        );

        let e = check(&url, "POST", &[], b"{}", "polly").unwrap_err();
        assert_eq!(e.code(), "MissingAuthenticationTokenException");
    }

    #[test]
    fn presigned_round_trip_expiry_and_tamper() {
        let signer = Signer::new(Credentials::new("AKIDEXAMPLE", SECRET, None), "us-west-2", "transcribe");
        let url =
            Url::parse("ws://127.0.0.1:4567/stream-transcription-websocket?language-code=en-US&sample-rate=16000")
                .unwrap();
        let signed = signer.presign("GET", &url, 300, at());
        let hs = [("Host", "127.0.0.1:4567"), ("Upgrade", "websocket")];
        let req = |query: &str, now: AmzDate| {
            verify(
                &IncomingRequest {
                    method: "GET",
                    path: signed.path(),
                    query,
                    headers: &hs,
                    payload_sha256: EMPTY_PAYLOAD_SHA256,
                },
                "transcribe",
                now.to_system_time(),
                accepted,
            )
        };
        let q = signed.query().unwrap();
        assert_eq!(req(q, at()).unwrap().region, "us-west-2");
        let later = AmzDate::from_unix_secs(at().unix_secs() + 300 + MAX_CLOCK_SKEW_SECS + 1);
        assert!(matches!(req(q, later), Err(AuthError::SignatureExpired { .. })));
        let tampered = q.replace("sample-rate=16000", "sample-rate=8000");
        assert_eq!(req(&tampered, at()).unwrap_err(), AuthError::InvalidSignature);
        let wrong_host = verify(
            &IncomingRequest {
                method: "GET",
                path: signed.path(),
                query: q,
                headers: &[("host", "127.0.0.1:1")],
                payload_sha256: EMPTY_PAYLOAD_SHA256,
            },
            "transcribe",
            at().to_system_time(),
            accepted,
        );
        assert_eq!(wrong_host.unwrap_err(), AuthError::InvalidSignature);
    }

    #[test]
    fn session_token_must_match_when_accepted_creds_have_one() {
        let lookup = |akid: &str| (akid == "ASIAX").then(|| Credentials::new("ASIAX", SECRET, Some("tok".into())));
        let url = Url::parse("https://example.amazonaws.com/").unwrap();
        for (token, ok) in [(Some("tok"), true), (Some("other"), false), (None, false)] {
            let signer = Signer::new(Credentials::new("ASIAX", SECRET, token.map(str::to_string)), "us-east-1", "sts");
            let s = signer.sign("GET", &url, &[], b"", at());
            let mut hs = vec![("host", "example.amazonaws.com")];
            hs.extend(s.pairs());
            let req = IncomingRequest {
                method: "GET",
                path: "/",
                query: "",
                headers: &hs,
                payload_sha256: EMPTY_PAYLOAD_SHA256,
            };
            assert_eq!(verify(&req, "sts", at().to_system_time(), lookup).is_ok(), ok, "{token:?}");
        }
    }
}
