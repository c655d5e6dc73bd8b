//! Plivo `X-Plivo-Signature-V3`: base64(HMAC-SHA256(auth token, u ‖ "." ‖ nonce)), where `u` is
//! the configured URL rebuilt with sorted query and request params (§3.3). Canonicalisation
//! follows plivo-python: query values are form-decoded, and on GET a query key overrides a
//! request param of the same name.

use crate::mac::{ct_eq, hmac_sha256};
use crate::AuthError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::BTreeMap;

/// Signed with the token of the account or sub-account owning the number.
pub const SIGNATURE_HEADER: &str = "x-plivo-signature-v3";
/// Same scheme, signed with the main account's token.
pub const MAIN_ACCOUNT_SIGNATURE_HEADER: &str = "x-plivo-signature-ma-v3";
pub const NONCE_HEADER: &str = "x-plivo-signature-v3-nonce";

/// base64(HMAC-SHA256(auth_token, u + "." + nonce)). `url` is the configured callback URL (its
/// query is `Q`), `params` the request's decoded params (`P`); `method` picks the GET or POST rule.
pub fn signature_v3(auth_token: &str, method: &str, url: &str, params: &[(String, String)], nonce: &str) -> String {
    let u = signed_url(method, url, params);
    STANDARD.encode(hmac_sha256(auth_token.as_bytes(), &[u.as_bytes(), b".", nonce.as_bytes()]))
}

/// The header may hold several comma-separated signatures (token rotation); any match passes.
/// All candidates are compared, in constant time.
pub fn verify_v3(
    auth_token: &str,
    method: &str,
    url: &str,
    params: &[(String, String)],
    nonce: Option<&str>,
    header: Option<&str>,
) -> Result<(), AuthError> {
    let nonce = nonce.filter(|n| !n.is_empty()).ok_or(AuthError::Missing(NONCE_HEADER))?;
    let header = header.filter(|h| !h.trim().is_empty()).ok_or(AuthError::Missing(SIGNATURE_HEADER))?;
    let expected = signature_v3(auth_token, method, url, params, nonce);
    let ok =
        header.split(',').fold(false, |ok, candidate| ok | ct_eq(candidate.trim().as_bytes(), expected.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

/// `u` of §3.3 step 2.
fn signed_url(method: &str, url: &str, params: &[(String, String)]) -> String {
    let no_fragment = url.split_once('#').map_or(url, |(u, _)| u);
    let (base, query) = no_fragment.split_once('?').unwrap_or((no_fragment, ""));
    let q = group(form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())));
    let p = group(params.iter().cloned());
    let mut u = base.to_string();
    if method.eq_ignore_ascii_case("GET") {
        let mut merged = p;
        merged.extend(q);
        let rendered = render_query(&merged);
        if !rendered.is_empty() {
            u.push('?');
            u.push_str(&rendered);
        }
    } else {
        if !q.is_empty() || !p.is_empty() {
            u.push('?');
        }
        u.push_str(&render_query(&q));
        if !q.is_empty() && !p.is_empty() {
            u.push('.');
        }
        for (k, values) in &p {
            for v in values {
                u.push_str(k);
                u.push_str(v);
            }
        }
    }
    u
}

/// Keys sorted by code point, each key's values sorted (duplicates kept, as the SDK does).
fn group(pairs: impl Iterator<Item = (String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        map.entry(k).or_default().push(v);
    }
    map.values_mut().for_each(|values| values.sort());
    map
}

/// `k=v&k=v`, one pair per value, unescaped.
fn render_query(map: &BTreeMap<String, Vec<String>>) -> String {
    let pairs: Vec<String> = map.iter().flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}"))).collect();
    pairs.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
    const NONCE: &str = "31627761595286130198";
    const URL: &str = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn params() -> Vec<(String, String)> {
        let uuid = "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36";
        p(&[
            ("Direction", "outbound"),
            ("From", "19792014278"),
            ("ALegUUID", uuid),
            ("ALegRequestUUID", uuid),
            ("CallUUID", uuid),
            ("RequestUUID", uuid),
            ("CallStatus", "in-progress"),
            ("BillRate", "0.002"),
            ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
            ("To", "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com"),
            ("SIP-H-To", "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1"),
            ("SessionStart", "2020-04-08 11:34:33.238707"),
            ("Event", "StartApp"),
        ])
    }

    #[test]
    fn official_vectors() {
        let with_query = format!("{URL}/?a=b&c=d");
        for (method, url, sig) in [
            ("POST", with_query.as_str(), "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c="),
            ("GET", with_query.as_str(), "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ="),
            ("POST", URL, "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="),
            ("GET", URL, "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc="),
        ] {
            assert_eq!(signature_v3(TOKEN, method, url, &params(), NONCE), sig, "{method} {url}");
            assert_eq!(verify_v3(TOKEN, method, url, &params(), Some(NONCE), Some(sig)), Ok(()));
        }
    }

    #[test]
    fn compact_vector() {
        let params = p(&[("CallUUID", "abc"), ("To", "+15550001111")]);
        let url = "https://example.com/answer";
        assert_eq!(signed_url("POST", url, &params), "https://example.com/answer?CallUUIDabcTo+15550001111");
        assert_eq!(
            signature_v3("my_auth_token", "POST", url, &params, "12345"),
            "+ApviDDMrGwFQ2RfNrpic0lkhW7qWfZX15RncMOyyI0="
        );
    }

    #[test]
    fn url_rules() {
        let params = p(&[("b", "2"), ("a", "y"), ("a", "x")]);
        assert_eq!(signed_url("POST", "https://h/p?z=1&c=%20", &params), "https://h/p?c= &z=1.axayb2");
        assert_eq!(signed_url("POST", "https://h/p?z=1", &[]), "https://h/p?z=1");
        assert_eq!(signed_url("POST", "https://h/p", &[]), "https://h/p");
        assert_eq!(signed_url("GET", "https://h/p?z=1&b=9", &params), "https://h/p?a=x&a=y&b=9&z=1");
        assert_eq!(signed_url("GET", "https://h/p", &[]), "https://h/p");
    }

    #[test]
    fn several_signatures_in_one_header() {
        let url = "https://example.com/answer";
        let params = p(&[("CallUUID", "abc")]);
        let good = signature_v3("tok", "POST", url, &params, "n1");
        let header = format!("bad,{good}");
        assert_eq!(verify_v3("tok", "POST", url, &params, Some("n1"), Some(&header)), Ok(()));
        let spaced = format!("{good}, other");
        assert_eq!(verify_v3("tok", "POST", url, &params, Some("n1"), Some(&spaced)), Ok(()));
        assert_eq!(verify_v3("tok", "POST", url, &params, Some("n1"), Some("bad,worse")), Err(AuthError::BadSignature));
    }

    #[test]
    fn negatives() {
        let sig = "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=";
        let mut changed = params();
        changed[0].1 = "inbound".into();
        assert_eq!(verify_v3(TOKEN, "POST", URL, &changed, Some(NONCE), Some(sig)), Err(AuthError::BadSignature));
        let http = URL.replacen("https", "http", 1);
        assert_eq!(verify_v3(TOKEN, "POST", &http, &params(), Some(NONCE), Some(sig)), Err(AuthError::BadSignature));
        assert_eq!(verify_v3(TOKEN, "POST", URL, &params(), Some("1"), Some(sig)), Err(AuthError::BadSignature));
        assert_eq!(verify_v3(TOKEN, "GET", URL, &params(), Some(NONCE), Some(sig)), Err(AuthError::BadSignature));
        assert_eq!(verify_v3(TOKEN, "POST", URL, &params(), None, Some(sig)), Err(AuthError::Missing(NONCE_HEADER)));
        assert_eq!(
            verify_v3(TOKEN, "POST", URL, &params(), Some(NONCE), None),
            Err(AuthError::Missing(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn round_trip() {
        let url = "https://gw.example.com/plivo/answer?tenant=t1";
        for method in ["GET", "POST"] {
            let sig = signature_v3("secret", method, url, &params(), "777");
            assert_eq!(verify_v3("secret", method, url, &params(), Some("777"), Some(&sig)), Ok(()));
        }
    }
}
