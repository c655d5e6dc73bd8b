//! Reading the `Authorization` header the way the carriers do. `None` = no usable credential,
//! which every route answers with its carrier's 401.

use axum::http::{header::AUTHORIZATION, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// `Basic base64(user:password)`.
pub(super) fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let b64 = credential(headers, "basic")?;
    let decoded = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `Bearer TOKEN`.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    credential(headers, "bearer")
}

fn credential<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn parses_basic_and_bearer() {
        assert_eq!(basic(&headers("Basic QUMxOnRvazpjb2xvbg==")), Some(("AC1".into(), "tok:colon".into())));
        assert_eq!(basic(&headers("Bearer QUMxOnRvaw==")), None);
        assert_eq!(basic(&headers("Basic !!!")), None);
        assert_eq!(bearer(&headers("bearer KEY1")), Some("KEY1"));
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
