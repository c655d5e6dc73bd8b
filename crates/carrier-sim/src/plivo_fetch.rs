//! What Plivo does after accepting a transfer: fetch the XML at `aleg_url` and dial what it
//! says. The simulator fetches it too, so a test sees whether Switchboard served a dial Plivo
//! would understand, but only from loopback: a simulator never reaches outside the machine.

use super::dial_doc::{self, Dial};
use std::net::IpAddr;
use std::time::Duration;
use url::{Host, Url};

/// The fetch is bounded like Plivo's answer-URL fetch would be; a stuck server is an error.
const TIMEOUT: Duration = Duration::from_secs(2);
const MAX_XML: usize = 64 * 1024;

pub(super) struct Fetched {
    pub(super) xml: Option<String>,
    pub(super) dial: Option<Dial>,
    /// Why there is no usable dial: not loopback, unreachable, not 200, or not a `<Dial>`.
    pub(super) error: Option<String>,
}

/// `method` is `GET` or `POST`; Plivo sends the call's parameters, here only `CallUUID`.
pub(super) async fn dial(http: &reqwest::Client, url: &Url, method: &str, call_uuid: &str) -> Fetched {
    let failed = |why: String| Fetched { xml: None, dial: None, error: Some(why) };
    if !loopback(url) {
        return failed("aleg_url is not on loopback; the simulator does not fetch it".into());
    }
    let req = match method {
        "GET" => {
            let mut url = url.clone();
            url.query_pairs_mut().append_pair("CallUUID", call_uuid);
            http.get(url)
        }
        _ => {
            let form = url::form_urlencoded::Serializer::new(String::new()).append_pair("CallUUID", call_uuid).finish();
            http.post(url.clone()).header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(form)
        }
    };
    let xml = match tokio::time::timeout(TIMEOUT, read(req)).await {
        Ok(Ok(xml)) => xml,
        Ok(Err(why)) => return failed(why),
        Err(_) => return failed(format!("aleg_url did not answer within {}s", TIMEOUT.as_secs())),
    };
    match dial_doc::parse(&xml, "User") {
        Some(dial) => Fetched { xml: Some(xml), dial: Some(dial), error: None },
        None => Fetched { xml: Some(xml), dial: None, error: Some("not a Plivo <Dial> document".into()) },
    }
}

async fn read(req: reqwest::RequestBuilder) -> Result<String, String> {
    let mut resp = req.send().await.map_err(|e| format!("aleg_url unreachable: {e}"))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(format!("aleg_url answered HTTP {}", resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("aleg_url body: {e}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_XML {
            return Err("aleg_url answered more than 64 KiB".into());
        }
    }
    String::from_utf8(body).map_err(|_| "aleg_url answered non-UTF-8".into())
}

fn loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name == "localhost",
        None => false,
    }
}
