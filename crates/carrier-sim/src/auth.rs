//! Reading the `Authorization` header the way the carriers do. `None` = no usable credential,
//! which every route answers with its carrier's 401.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use simkit::Request;

/// `Basic base64(user:password)`.
pub(super) fn basic(req: &Request) -> Option<(String, String)> {
    let b64 = credential(req, "basic")?;
    let decoded = String::from_utf8(STANDARD.decode(b64).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `Bearer TOKEN`.
pub(super) fn bearer(req: &Request) -> Option<&str> {
    credential(req, "bearer")
}

fn credential<'a>(req: &'a Request, scheme: &str) -> Option<&'a str> {
    let (given, rest) = req.header("authorization")?.split_once(' ')?;
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(v: &str) -> Request {
        Request { headers: vec![("authorization".into(), v.into())], ..Request::default() }
    }

    #[test]
    fn parses_basic_and_bearer() {
        assert_eq!(basic(&auth("Basic QUMxOnRvazpjb2xvbg==")), Some(("AC1".into(), "tok:colon".into())));
        assert_eq!(basic(&auth("Bearer QUMxOnRvaw==")), None);
        assert_eq!(basic(&auth("Basic !!!")), None);
        assert_eq!(bearer(&auth("bearer KEY1")), Some("KEY1"));
        assert_eq!(bearer(&auth("Bearer ")), None);
        assert_eq!(bearer(&Request::default()), None);
    }
}
