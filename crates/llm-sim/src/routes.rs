//! Each API's route table and the dispatch of a request to it, with the answers axum gave the
//! simulators before they ran on simkit: a path no route matches goes to the API's fallback
//! (its own 404 body), a matched path with another method is an empty `405` naming the allowed
//! methods. `{…}` segments match one non-empty path segment and reach the handler
//! percent-decoded, as axum's `Path` gave them.

use crate::server::{Call, Shared};
use simkit::{Reply, Request, Route, Stats};

/// A handler's answer: a reply or a stream, or the refusal to send instead.
pub(crate) type Answer = Result<Route<()>, Reply>;

/// One route: method, path pattern (`/model/{model}/converse-stream`) and handler.
pub(crate) struct Endpoint {
    method: &'static str,
    pattern: &'static str,
    handler: fn(&Call) -> Answer,
}

pub(crate) const fn get(pattern: &'static str, handler: fn(&Call) -> Answer) -> Endpoint {
    Endpoint { method: "GET", pattern, handler }
}

pub(crate) const fn post(pattern: &'static str, handler: fn(&Call) -> Answer) -> Endpoint {
    Endpoint { method: "POST", pattern, handler }
}

/// An API's routes and its answer to a path none of them matches.
pub(crate) struct Routes {
    pub endpoints: &'static [Endpoint],
    pub fallback: fn(&Request) -> Reply,
}

impl Routes {
    /// Runs the handler of the route `req` matches, or answers 405 or the fallback.
    pub(crate) fn dispatch(&self, sim: &Shared, stats: &Stats, req: &Request) -> Route<()> {
        let mut allowed = Vec::new();
        for e in self.endpoints {
            let Some(params) = matches(e.pattern, &req.path) else {
                continue;
            };
            if e.method == req.method {
                return (e.handler)(&Call { sim, stats, req, params }).unwrap_or_else(Route::Reply);
            }
            allowed.push(e.method);
        }
        if allowed.is_empty() {
            return Route::Reply((self.fallback)(req));
        }
        Route::Reply(Reply::empty(405).header("allow", allowed.join(",")))
    }
}

/// The decoded `{…}` segments if `path` matches `pattern`.
fn matches(pattern: &str, path: &str) -> Option<Vec<String>> {
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    let mut params = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && !g.is_empty() => params.push(percent_decode(g)?),
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// `%XX` escapes decoded; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let mut out = Vec::with_capacity(segment.len());
    let mut bytes = segment.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        let p = "/openai/deployments/{deployment}/chat/completions";
        assert_eq!(matches(p, "/openai/deployments/gpt-4o/chat/completions"), Some(vec!["gpt-4o".into()]));
        assert_eq!(matches(p, "/openai/deployments//chat/completions"), None);
        assert_eq!(matches(p, "/openai/deployments/a/b/chat/completions"), None);
        assert_eq!(matches("/v1/models", "/v1/models"), Some(vec![]));
        assert_eq!(matches("/v1/models", "/v1/models/"), None);
        let model = "/model/{model}/converse-stream";
        assert_eq!(
            matches(model, "/model/amazon.nova-lite-v1%3A0/converse-stream"),
            Some(vec!["amazon.nova-lite-v1:0".into()])
        );
        assert_eq!(matches(model, "/model/bad%3/converse-stream"), None);
    }
}
