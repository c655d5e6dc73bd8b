//! Signature Version 4: the `Authorization`-header form (HTTPS requests) and the presigned-URL
//! form (the Transcribe websocket), plus the canonicalization both share with [`crate::verify`].

use crate::{AmzDate, Credentials};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use url::Url;

pub(crate) type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Hex SHA-256 of the empty body: the payload hash of every GET, including the presigned
/// websocket upgrade.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Hex SHA-256 of a body, the last line of the canonical request.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `kSigning` = HMAC chain over date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k_secret = String::with_capacity(4 + secret.len());
    k_secret.push_str("AWS4");
    k_secret.push_str(secret);
    let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// `AWS4-HMAC-SHA256\n{datetime}\n{scope}\n{hex(sha256(canonical_request))}`.
pub fn string_to_sign(at: AmzDate, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{at}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Percent-encodes per SigV4: unreserved `A-Z a-z 0-9 - _ . ~` kept, everything else `%XX`
/// upper-case; `/` kept only when `keep_slash` (paths).
pub fn uri_encode(s: &str, keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
}

/// Decodes `%XX` escapes (a `+` stays a `+`: SigV4 clients never use it for space).
/// `None` for a broken escape or non-UTF-8 result.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The canonical URI of a path as it travels on the wire (already percent-encoded once):
/// dot segments removed, then encoded again — the "double encoding" every service but S3 uses,
/// so a Bedrock model id `…-v1:0` signs as `…-v1%3A0` (or `%253A0` if the wire had `%3A`).
pub fn canonical_uri(wire_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in wire_path.split('/') {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = segments.join("/");
    if !normalized.starts_with('/') {
        normalized.insert(0, '/');
    }
    if wire_path.ends_with("/.") || wire_path.ends_with("/..") {
        normalized.push('/');
    }
    let mut out = String::with_capacity(normalized.len() + 8);
    uri_encode(&normalized, true, &mut out);
    out
}

/// Sorted `name=value` pairs (both already decoded), each encoded, joined by `&`.
pub fn canonical_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| {
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(k, false, &mut ek);
            uri_encode(v, false, &mut ev);
            (ek, ev)
        })
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Canonical header block and signed-header list from `(name, value)` pairs: names lower-cased
/// and sorted, values trimmed with inner runs of spaces collapsed, repeats joined by `,`.
pub fn canonical_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> (String, String) {
    let mut list: Vec<(String, String)> = headers
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let mut block = String::new();
    let mut names = String::new();
    let mut last: Option<&str> = None;
    for (name, value) in &list {
        if last == Some(name.as_str()) {
            // Same header again: append to the previous line (drop its '\n' first).
            block.pop();
            block.push(',');
        } else {
            if last.is_some() {
                names.push(';');
            }
            names.push_str(name);
            block.push_str(name);
            block.push(':');
        }
        block.push_str(value);
        block.push('\n');
        last = Some(name.as_str());
    }
    (block, names)
}

/// The `Host` header value a client sends for `url`: host plus the port when it is not the
/// scheme's default (so Transcribe's `:8443` is signed, `:443` is not).
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Signs requests for one credential set, region and service (`polly`, `transcribe`,
/// `bedrock`, `sts`).
#[derive(Clone)]
pub struct Signer {
    credentials: Credentials,
    region: String,
    service: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish()
    }
}

/// The headers a header-form signature adds. The caller sends every one of them (mark
/// `authorization` and `x-amz-security-token` sensitive); `Debug` redacts both.
#[derive(Clone)]
pub struct SignedHeaders {
    pub x_amz_date: String,
    pub security_token: Option<String>,
    pub authorization: String,
}

impl SignedHeaders {
    /// `(lower-case name, value)` of each header to add to the request.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some(("x-amz-date", self.x_amz_date.as_str())),
            self.security_token.as_deref().map(|t| ("x-amz-security-token", t)),
            Some(("authorization", self.authorization.as_str())),
        ]
        .into_iter()
        .flatten()
    }
}

impl fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedHeaders")
            .field("x_amz_date", &self.x_amz_date)
            .field("security_token", &self.security_token.as_ref().map(|_| "<redacted>"))
            .field("authorization", &"<redacted>")
            .finish()
    }
}

impl Signer {
    pub fn new(credentials: Credentials, region: impl Into<String>, service: impl Into<String>) -> Self {
        Self { credentials, region: region.into(), service: service.into() }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    fn scope(&self, at: AmzDate) -> String {
        format!("{}/{}/{}/aws4_request", at.date(), self.region, self.service)
    }

    fn signature(&self, at: AmzDate, scope: &str, canonical_request: &str) -> String {
        let key = signing_key(self.credentials.secret_access_key(), &at.date(), &self.region, &self.service);
        hex::encode(hmac(&key, string_to_sign(at, scope, canonical_request).as_bytes()))
    }

    /// Header-form signature over `body`. See [`Signer::sign_with_payload_hash`].
    pub fn sign(&self, method: &str, url: &Url, headers: &[(&str, &str)], body: &[u8], at: AmzDate) -> SignedHeaders {
        self.sign_with_payload_hash(method, url, headers, &sha256_hex(body), at)
    }

    /// Header-form signature. `headers` are the extra headers to sign and send (e.g.
    /// `content-type`); `host` comes from `url` unless `headers` names one. The query string of
    /// `url` is signed as is.
    pub fn sign_with_payload_hash(
        &self,
        method: &str,
        url: &Url,
        headers: &[(&str, &str)],
        payload_sha256: &str,
        at: AmzDate,
    ) -> SignedHeaders {
        let x_amz_date = at.to_string();
        let host = host_header(url);
        let has_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 3);
        if !has_host {
            all.push(("host", &host));
        }
        all.extend_from_slice(headers);
        all.push(("x-amz-date", &x_amz_date));
        let token = self.credentials.session_token();
        if let Some(t) = token {
            all.push(("x-amz-security-token", t));
        }
        let (canon_headers, signed) = canonical_headers(all);
        let query: Vec<(String, String)> = url.query_pairs_raw();
        let canonical_request = format!(
            "{}\n{}\n{}\n{canon_headers}\n{signed}\n{payload_sha256}",
            method.to_ascii_uppercase(),
            canonical_uri(url.path()),
            canonical_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        let scope = self.scope(at);
        let signature = self.signature(at, &scope, &canonical_request);
        SignedHeaders {
            authorization: format!(
                "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
                self.credentials.access_key_id()
            ),
            security_token: token.map(str::to_string),
            x_amz_date,
        }
    }

    /// Presigned URL (query form): adds the `X-Amz-*` parameters to `url`'s query, signs only
    /// `host` with the empty-body hash, and appends `X-Amz-Signature`. The result carries the
    /// secret-derived signature and any session token: do not log it.
    pub fn presign(&self, method: &str, url: &Url, expires_secs: u32, at: AmzDate) -> Url {
        let scope = self.scope(at);
        let credential = format!("{}/{scope}", self.credentials.access_key_id());
        let date = at.to_string();
        let expires = expires_secs.to_string();
        let mut params: Vec<(String, String)> = url.query_pairs_raw();
        params.push(("X-Amz-Algorithm".into(), ALGORITHM.into()));
        params.push(("X-Amz-Credential".into(), credential));
        params.push(("X-Amz-Date".into(), date));
        params.push(("X-Amz-Expires".into(), expires));
        params.push(("X-Amz-SignedHeaders".into(), "host".into()));
        if let Some(t) = self.credentials.session_token() {
            params.push(("X-Amz-Security-Token".into(), t.to_string()));
        }
        let query = canonical_query(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let host = host_header(url);
        let canonical_request = format!(
            "{}\n{}\n{query}\nhost:{host}\n\nhost\n{EMPTY_PAYLOAD_SHA256}",
            method.to_ascii_uppercase(),
            canonical_uri(url.path()),
        );
        let signature = self.signature(at, &scope, &canonical_request);
        let mut out = url.clone();
        out.set_query(Some(&format!("{query}&X-Amz-Signature={signature}")));
        out
    }
}

/// Decoded query pairs of a URL, without `form_urlencoded`'s `+`-as-space rule.
trait QueryPairsRaw {
    fn query_pairs_raw(&self) -> Vec<(String, String)>;
}

impl QueryPairsRaw for Url {
    fn query_pairs_raw(&self) -> Vec<(String, String)> {
        parse_query(self.query().unwrap_or_default()).unwrap_or_default()
    }
}

/// Splits a raw query string into decoded pairs; `None` if an escape is broken.
pub(crate) fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vanilla_signer(token: Option<&str>) -> Signer {
        Signer::new(
            Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token.map(str::to_string)),
            "us-east-1",
            "service",
        )
    }

    fn at() -> AmzDate {
        AmzDate::parse("20150830T123600Z").unwrap()
    }

    fn signature_of(auth: &str) -> &str {
        auth.rsplit("Signature=").next().unwrap()
    }

    #[test]
    fn signing_key_vector() {
        let key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service");
        assert_eq!(hex::encode(key), "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
    }

    #[test]
    fn get_vanilla_header_form() {
        let url = Url::parse("https://example.amazonaws.com/").unwrap();
        let s = vanilla_signer(None).sign("GET", &url, &[], b"", at());
        assert_eq!(s.x_amz_date, "20150830T123600Z");
        assert_eq!(
            s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        let sts = string_to_sign(
            at(),
            "20150830/us-east-1/service/aws4_request",
            &format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_PAYLOAD_SHA256}"),
        );
        assert!(sts.ends_with("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"));
        assert!(!format!("{s:?}").contains("5fa00fa3"));
    }

    #[test]
    fn post_vanilla_header_form() {
        let url = Url::parse("https://example.amazonaws.com/").unwrap();
        let s = vanilla_signer(None).sign("POST", &url, &[], b"", at());
        assert_eq!(signature_of(&s.authorization), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    }

    #[test]
    fn get_vanilla_query_form() {
        let url = Url::parse("https://example.amazonaws.com/").unwrap();
        let signed = vanilla_signer(None).presign("GET", &url, 3600, at());
        let q = signed.query().unwrap();
        assert!(q.starts_with(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&"
        ));
        assert!(q.ends_with("X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d"));
    }

    #[test]
    fn get_vanilla_with_session_token_query_form() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let url = Url::parse("https://example.amazonaws.com/").unwrap();
        let signed = vanilla_signer(Some(token)).presign("GET", &url, 3600, at());
        let q = signed.query().unwrap();
        assert!(q.contains(&format!("X-Amz-Security-Token={token}")));
        assert!(q.ends_with("X-Amz-Signature=7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c"));
    }

    #[test]
    fn worked_transcribe_presign() {
        let signer = Signer::new(
            Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
            "us-east-1",
            "transcribe",
        );
        let url = Url::parse(
            "wss://transcribestreaming.us-east-1.amazonaws.com:8443/stream-transcription-websocket\
             ?language-code=en-US&media-encoding=pcm&sample-rate=16000",
        )
        .unwrap();
        let signed = signer.presign("GET", &url, 300, at());
        assert_eq!(
            signed.as_str(),
            "wss://transcribestreaming.us-east-1.amazonaws.com:8443/stream-transcription-websocket?\
             X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Ftranscribe%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&language-code=en-US\
             &media-encoding=pcm&sample-rate=16000\
             &X-Amz-Signature=0db9203a3b2901dd66d2a9542671dc1760207b2de6fb4c8ff9eec222bd938539"
        );
    }

    #[test]
    fn canonicalization_rules() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/model/a.b-v1:0/converse-stream"), "/model/a.b-v1%3A0/converse-stream");
        assert_eq!(canonical_uri("/model/a%3A0/x"), "/model/a%253A0/x");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_query([("b", "2"), ("a", "x y"), ("a", "1+")]), "a=1%2B&a=x%20y&b=2");
        let (block, names) = canonical_headers([("X-B", "  a   b "), ("Host", "h"), ("x-b", "c")]);
        assert_eq!(block, "host:h\nx-b:a b,c\n");
        assert_eq!(names, "host;x-b");
        assert_eq!(host_header(&Url::parse("wss://h.example:443/x").unwrap()), "h.example");
        assert_eq!(host_header(&Url::parse("ws://127.0.0.1:9000/x").unwrap()), "127.0.0.1:9000");
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b+c"));
        assert_eq!(percent_decode("%4"), None);
    }
}
