//! The web app: the talk and console pages and the JS client they share, embedded in the binary
//! so a server needs no Node and no separate web server. Every response here carries a strict
//! Content-Security-Policy (scripts only from this origin, no inline code, no framing), so a
//! page that holds an org key in `sessionStorage` cannot be framed or fed foreign script.
//!
//! The JS client is the npm package in `clients/js`; its files are served from `/assets/client/`.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file: the URL path under `/assets/`, its media type and its bytes.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Assets of the scripts `$file` in `$dir`, served under `/assets/$prefix`.
macro_rules! scripts {
    ($prefix:literal, $dir:literal, [$($file:literal),+ $(,)?]) => {
        &[$(Asset { path: concat!($prefix, $file), mime: JS, body: include_str!(concat!($dir, $file)) }),+]
    };
}

/// Every file the pages load. A new file = its name in one of these lists (kept one line per
/// folder, hence no rustfmt).
#[rustfmt::skip]
const ASSETS: [&[Asset]; 3] = [
    &[Asset { path: "style.css", mime: "text/css; charset=utf-8", body: include_str!("../web/style.css") }],
    scripts!("", "../web/", ["talk.js", "console.js", "console-keys.js", "console-agents.js", "console-calls.js",
        "console-admin.js", "session.js"]),
    scripts!("client/", "../clients/js/src/", ["index.js", "call.js", "capture.js", "capture-worklet.js",
        "resample.js", "playback.js"]),
];

fn assets() -> impl Iterator<Item = &'static Asset> {
    ASSETS.iter().flat_map(|group| group.iter())
}

const INDEX: &str = include_str!("../web/index.html");
const TALK: &str = include_str!("../web/talk.html");
const CONSOLE: &str = include_str!("../web/console.html");

/// The pages and their assets. Merged into the API router, so unknown paths still answer the
/// API's JSON 404.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { page(&h, INDEX) }))
        .route("/talk", get(|h: HeaderMap| async move { page(&h, TALK) }))
        .route("/console", get(|h: HeaderMap| async move { page(&h, CONSOLE) }))
        .route("/assets/{*path}", get(asset))
}

fn page(headers: &HeaderMap, html: &'static str) -> Response {
    with_headers(headers, "text/html; charset=utf-8", html)
}

async fn asset(headers: HeaderMap, Path(path): Path<String>) -> Response {
    match assets().find(|a| a.path == path) {
        Some(a) => with_headers(&headers, a.mime, a.body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The security headers every page and asset carries.
fn with_headers(headers: &HeaderMap, mime: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(csp) = HeaderValue::from_str(&csp(headers)) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The pages change with the binary; a stale cached client would speak an old protocol.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Same origin only. `connect-src 'self'` covers ws/wss to this host in current browsers; the
/// explicit `ws://host wss://host` keeps older ones working. The Host header is echoed only when
/// it is a plain host[:port], so it cannot inject directives.
fn csp(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)));
    let sockets = host.map(|h| format!(" ws://{h} wss://{h}")).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{sockets}; media-src 'self' blob:; worker-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_echoes_only_a_plain_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(csp(&h).contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"));
        h.insert(header::HOST, HeaderValue::from_static("evil; script-src *"));
        assert!(csp(&h).contains("connect-src 'self';"));
        assert!(!csp(&h).contains("evil"));
    }

    /// Every module the pages import is served: a relative import the table lacks would 404 in
    /// the browser only.
    #[test]
    fn every_imported_module_is_served() {
        for a in assets().filter(|a| a.mime == JS) {
            let dir = a.path.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
            for line in a.body.lines().filter(|l| l.trim_start().starts_with("import ")) {
                let Some(spec) = line.split(['\'', '"']).nth(1) else { continue };
                let target = match spec.strip_prefix("./") {
                    Some(rest) => format!("{dir}{rest}"),
                    None => spec.trim_start_matches("/assets/").to_string(),
                };
                assert!(assets().any(|b| b.path == target), "{} imports {spec}, not served", a.path);
            }
        }
    }
}
