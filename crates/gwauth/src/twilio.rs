//! Twilio `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL ‖ sorted form params)), §3.1.
//! Twilio signs no timestamp, so answers must be idempotent per `CallSid`; the stream token (§4)
//! is what stops a replayed media socket.

use crate::mac::{ct_eq, hmac_sha1};
use crate::AuthError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::{BTreeMap, BTreeSet};

/// The header the signature arrives in.
pub const HEADER: &str = "x-twilio-signature";

/// base64(HMAC-SHA1(auth_token, url + params)): distinct keys sorted by code point, each key's
/// distinct values sorted, key then value appended with no separators (§3.1 step 2).
/// `url` is the full public URL including the raw query; GET webhooks pass no `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(hmac_sha1(auth_token.as_bytes(), &[url.as_bytes(), canonical_params(params).as_bytes()]))
}

/// Accepts the URL as given, with its port stripped, or with the scheme's default port added:
/// Twilio's back ends are inconsistent about the port (§3.1 step 4). Every variant is compared,
/// in constant time, so timing does not tell which one matched.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> Result<(), AuthError> {
    if signature.is_empty() {
        return Err(AuthError::Missing(HEADER));
    }
    let body = canonical_params(params);
    let key = auth_token.as_bytes();
    let matches = |u: &str| {
        ct_eq(STANDARD.encode(hmac_sha1(key, &[u.as_bytes(), body.as_bytes()])).as_bytes(), signature.as_bytes())
    };
    let mut ok = matches(url);
    for variant in port_variants(url).into_iter().flatten() {
        ok |= matches(&variant);
    }
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

fn canonical_params(params: &[(String, String)]) -> String {
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (k, v) in params {
        sorted.entry(k).or_default().insert(v);
    }
    let mut out = String::new();
    for (k, values) in sorted {
        for v in values {
            out.push_str(k);
            out.push_str(v);
        }
    }
    out
}

/// `[port stripped, default port added]`; at most one applies (a URL has a port or it has not).
fn port_variants(url: &str) -> [Option<String>; 2] {
    let Some((scheme, rest)) = url.split_once("://") else { return [None, None] };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The port follows the host, which follows any `user:pass@`; an IPv6 host is bracketed.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    let port_sep = host_port
        .rfind(':')
        .filter(|&i| !host_port[i..].contains(']'))
        .filter(|&i| host_port.len() > i + 1 && host_port[i + 1..].bytes().all(|b| b.is_ascii_digit()));
    match port_sep {
        Some(i) => {
            let stripped = &authority[..host_start + i];
            [Some(format!("{scheme}://{stripped}{tail}")), None]
        }
        None => {
            let port = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
            [None, Some(format!("{scheme}://{authority}:{port}{tail}"))]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn params() -> Vec<(String, String)> {
        p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn sdk_vector_and_signed_string() {
        assert_eq!(
            format!("{URL}{}", canonical_params(&params())),
            "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212"
        );
        assert_eq!(signature(TOKEN, URL, &params()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(verify(TOKEN, URL, &params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="), Ok(()));
    }

    #[test]
    fn sdk_port_vectors() {
        let with_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        let with_80 = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
        let with_1234 = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert_eq!(signature(TOKEN, with_443, &params()), "kvajT1Ptam85bY51eRf/AJRuM3w=");
        assert_eq!(signature(TOKEN, with_80, &params()), "0ZXoZLH/DfblKGATFgpif+LLRf4=");
        assert_eq!(signature(TOKEN, with_1234, &params()), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=");
        // Each URL verifies against Twilio's signature in either port form.
        for (url, sig) in [
            (with_443, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            (with_443, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            (URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            (with_80, "0ZXoZLH/DfblKGATFgpif+LLRf4="),
            (with_1234, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        ] {
            assert_eq!(verify(TOKEN, url, &params(), sig), Ok(()), "{url} {sig}");
        }
    }

    #[test]
    fn multi_value_params_are_deduplicated_and_sorted() {
        let params =
            p(&[("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]);
        assert_eq!(canonical_params(&params), "Digits1234Digits5678SidCA123SidAccountAC123");
        assert_eq!(signature(TOKEN, URL, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn json_body_hash_vector_signs_the_url_alone() {
        let url = format!("{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620");
        assert_eq!(signature(TOKEN, &url, &[]), "a9nBmqA0ju/hNViExpshrM61xv4=");
    }

    #[test]
    fn media_stream_upgrade_vector() {
        let url = "wss://example.com/media-stream";
        assert_eq!(signature(TOKEN, url, &[]), "XFfwGS2Ev7f9qAP9MmRoMS7C724=");
        assert_eq!(verify(TOKEN, url, &[], "XFfwGS2Ev7f9qAP9MmRoMS7C724="), Ok(()));
    }

    #[test]
    fn negatives() {
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        let mut changed = params();
        changed[2].1 = "1235".into();
        assert_eq!(verify(TOKEN, URL, &changed, good), Err(AuthError::BadSignature));
        let http = URL.replacen("https", "http", 1);
        assert_eq!(verify(TOKEN, &http, &params(), good), Err(AuthError::BadSignature));
        assert_eq!(verify("54321", URL, &params(), good), Err(AuthError::BadSignature));
        assert_eq!(verify(TOKEN, URL, &params(), ""), Err(AuthError::Missing(HEADER)));
        assert_eq!(verify(TOKEN, URL, &params(), "not base64"), Err(AuthError::BadSignature));
    }

    #[test]
    fn port_variants_respect_userinfo_and_ipv6() {
        assert_eq!(port_variants("https://u:p@h.com:8443/x"), [Some("https://u:p@h.com/x".into()), None]);
        assert_eq!(port_variants("https://u:p@h.com/x"), [None, Some("https://u:p@h.com:443/x".into())]);
        assert_eq!(port_variants("http://[::1]/x?y=1"), [None, Some("http://[::1]:80/x?y=1".into())]);
        assert_eq!(port_variants("http://[::1]:8080"), [Some("http://[::1]".into()), None]);
        assert_eq!(port_variants("no scheme"), [None, None]);
    }

    #[test]
    fn round_trip() {
        let url = "https://gw.example.com/twilio/voice";
        let sig = signature("secret", url, &params());
        assert_eq!(verify("secret", url, &params(), &sig), Ok(()));
        assert_eq!(verify("secret", "https://gw.example.com:443/twilio/voice", &params(), &sig), Ok(()));
    }
}
