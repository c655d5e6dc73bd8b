//! HTTP plumbing every adapter shares: endpoint joining, the sensitive key header, sending with
//! transport errors described, and the status/retry hint of a refused request.

use crate::error::describe_transport;
use crate::LlmError;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

/// `base` + `segments`, whether or not `base` ends with '/'. When `version` is given and `base`
/// already ends with it (`…/v1` configured instead of the bare host), it is not added twice.
pub(crate) fn join(base: &Url, version: Option<&str>, segments: &[&str]) -> Result<Url, LlmError> {
    let has_version =
        version.is_some_and(|v| base.path_segments().and_then(|mut s| s.rfind(|seg| !seg.is_empty())) == Some(v));
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| LlmError::BadRequest("the provider base URL cannot take a path".into()))?;
        path.pop_if_empty();
        if let Some(v) = version.filter(|_| !has_version) {
            path.push(v);
        }
        path.extend(segments);
    }
    Ok(url)
}

/// A header carrying a key: marked sensitive so hyper and `Debug` never show it.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, LlmError> {
    let mut header = HeaderValue::try_from(value)
        .map_err(|_| LlmError::BadRequest("the API key has characters not allowed in an HTTP header".into()))?;
    header.set_sensitive(true);
    Ok(header)
}

/// Sends a request; a transport failure becomes [`LlmError::Http`] with its causes.
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, LlmError> {
    req.send().await.map_err(|e| LlmError::Http(describe_transport(&e)))
}

/// A refused request: its status, retry hint and body (empty if unreadable: the status still
/// says enough).
pub(crate) struct Refusal {
    pub status: u16,
    pub retry_after_ms: Option<u64>,
    pub body: Bytes,
}

impl Refusal {
    pub(crate) async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let retry_after_ms = retry_after_ms(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        Self { status, retry_after_ms, body }
    }
}

/// `retry-after-ms` (preferred), else `retry-after` in seconds. The HTTP-date form is ignored:
/// providers send seconds, and a missing hint only means the caller's own backoff applies.
pub(crate) fn retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let number = |name: &str| {
        headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| ms.ceil() as u64)
        .or_else(|| number("retry-after").map(|s| (s * 1000.0).ceil() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_adds_the_version_once() {
        for base in ["http://h:9", "http://h:9/", "http://h:9/v1", "http://h:9/v1/"] {
            let url = join(&Url::parse(base).unwrap(), Some("v1"), &["messages"]).unwrap();
            assert_eq!(url.as_str(), "http://h:9/v1/messages", "{base}");
        }
        let url = join(&Url::parse("https://api.akashml.com/anthropic").unwrap(), Some("v1"), &["messages"]).unwrap();
        assert_eq!(url.as_str(), "https://api.akashml.com/anthropic/v1/messages");
        let url = join(&Url::parse("http://h/v1/").unwrap(), None, &["a", "b"]).unwrap();
        assert_eq!(url.as_str(), "http://h/v1/a/b");
    }

    #[test]
    fn secret_header_is_sensitive_and_rejects_newlines() {
        assert!(secret_header("sk-abc").unwrap().is_sensitive());
        assert!(matches!(secret_header("sk-abc\n"), Err(LlmError::BadRequest(_))));
    }

    #[test]
    fn retry_hints() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_ms(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after_ms(&h), Some(2000));
        h.insert("retry-after-ms", HeaderValue::from_static("1500.2"));
        assert_eq!(retry_after_ms(&h), Some(1501));
        h.insert("retry-after-ms", HeaderValue::from_static("soon"));
        assert_eq!(retry_after_ms(&h), Some(2000));
    }
}
