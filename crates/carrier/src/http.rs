//! What every carrier call shares: the URL built from segments, the 5 s deadline, a capped body
//! read, and the status → error mapping.

use crate::{Carrier, CarrierError};
use std::time::Duration;
use url::Url;

/// Per request, connect to last body byte. Hang-ups run while a call is being torn down; a
/// carrier slower than this is retried by the caller or left to the carrier's own timeout.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
/// Enough for any error or call JSON; a larger body is cut, not buffered.
const MAX_BODY: usize = 64 * 1024;

/// A carrier's answer: status and the first [`MAX_BODY`] bytes of its body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The error for an answer the caller did not expect; `code` is the carrier's own.
    pub(crate) fn error(&self, carrier: Carrier, code: Option<String>) -> CarrierError {
        match self.status {
            401 | 403 => CarrierError::Unauthorized(carrier),
            status => CarrierError::Rejected { carrier, status, code },
        }
    }
}

/// `base` + one path segment per item, each percent-encoded as a path segment (so an id can
/// never add a segment or a query; `:` stays as is, as Telnyx ids need).
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, CarrierError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut().map_err(|_| CarrierError::InvalidRequest("base URL"))?.pop_if_empty().extend(segments);
    Ok(url)
}

/// Refuses ids no carrier issues: empty, over 256 bytes, spaces or control characters, or the
/// dot segments a URL would resolve away.
pub(crate) fn check_id<'a>(id: &'a str, what: &'static str) -> Result<&'a str, CarrierError> {
    let printable = id.bytes().all(|b| b.is_ascii_graphic());
    if id.is_empty() || id.len() > 256 || !printable || id == "." || id == ".." {
        return Err(CarrierError::InvalidRequest(what));
    }
    Ok(id)
}

pub(crate) async fn send(carrier: Carrier, req: reqwest::RequestBuilder) -> Result<Answer, CarrierError> {
    let exchange = async {
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            let room = MAX_BODY - body.len();
            body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            if body.len() == MAX_BODY {
                break;
            }
        }
        Ok::<_, reqwest::Error>(Answer { status, body })
    };
    match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Err(_) => Err(CarrierError::Timeout(carrier)),
        Ok(Err(e)) if e.is_timeout() => Err(CarrierError::Timeout(carrier)),
        Ok(Err(source)) => Err(CarrierError::Unreachable { carrier, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_but_colons_kept() {
        let base = Url::parse("http://127.0.0.1:9/").unwrap();
        let url = endpoint(&base, &["v2", "calls", "v3:a/b?c#d", "actions", "hangup"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/v2/calls/v3:a%2Fb%3Fc%23d/actions/hangup");
        let base = Url::parse("https://api.plivo.com").unwrap();
        let url = endpoint(&base, &["v1", "Account", "MA1", "Call", "u-1", ""]).unwrap();
        assert_eq!(url.as_str(), "https://api.plivo.com/v1/Account/MA1/Call/u-1/");
        let prefixed = Url::parse("http://127.0.0.1:9/carrier/").unwrap();
        assert_eq!(endpoint(&prefixed, &["x"]).unwrap().path(), "/carrier/x");
    }

    #[test]
    fn odd_ids_are_refused() {
        for id in ["", ".", "..", "a b", "a\nb", &"x".repeat(257)] {
            assert_eq!(check_id(id, "call id").unwrap_err().code(), "carrier_invalid_request", "{id:?}");
        }
        assert!(check_id("v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO", "call id").is_ok());
    }
}
