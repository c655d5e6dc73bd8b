//! Transfer and DTMF against the simulator, carrier by carrier, over real sockets: what each
//! carrier receives (TwiML, JSON, Plivo XML fetched from our own server, NCCO), what a call
//! that is over answers, and that a bad argument never leaves the client.

mod util;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use carrier::{
    hang_up, plivo_dial_xml, send_dtmf, transfer, CarrierError, Credentials, HangUp, PhoneNumber, PlivoXml, Target,
    Transfer, XmlMethod,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use url::Url;
use util::*;

const TO: &str = "+14155550100";
const CALLER: &str = "+14155550199";
const SIP_WITH_AMP: &str = "sip:desk@pbx.example.com?X-Ref=1&X-Team=2";

/// Serves Plivo XML the way Switchboard will: `/plivo/{call}` answers the document registered
/// for that call, to GET or POST, and remembers the verb and `CallUUID` Plivo sent.
#[derive(Clone, Default)]
struct XmlServer {
    docs: Arc<Mutex<HashMap<String, String>>>,
    hits: Arc<Mutex<Vec<(String, String)>>>,
}

impl XmlServer {
    async fn start() -> (Self, Url) {
        let server = Self::default();
        let app = Router::new().route("/plivo/{call}", any(serve_xml)).with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (server, base)
    }

    fn serve(&self, call: &str, xml: String) {
        self.docs.lock().unwrap().insert(call.to_string(), xml);
    }
}

async fn serve_xml(
    State(s): State<XmlServer>,
    Path(call): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = if method == Method::GET { query.unwrap_or_default().into_bytes() } else { body.to_vec() };
    let uuid = url::form_urlencoded::parse(&params).find(|(k, _)| k == "CallUUID").map(|(_, v)| v.into_owned());
    s.hits.lock().unwrap().push((method.to_string(), uuid.unwrap_or_default()));
    match s.docs.lock().unwrap().get(&call) {
        Some(xml) => ([(header::CONTENT_TYPE, "application/xml")], xml.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The transfer a session would make for `carrier`, with the Plivo XML served for it.
fn transfer_for(carrier: &str, target: &str, caller: Option<&str>, xml: (&XmlServer, &Url), call: &str) -> Transfer {
    let mut t = Transfer::to(Target::parse(target).unwrap());
    t.caller_id = caller.map(|c| PhoneNumber::parse(c).unwrap());
    if carrier == "plivo" {
        xml.0.serve(call, plivo_dial_xml(&t.target, t.caller_id.as_ref()));
        t.plivo_xml = Some(PlivoXml { url: xml.1.join(&format!("plivo/{call}")).unwrap(), method: XmlMethod::Post });
    }
    t
}

fn plivo_url(xml: &Url, call: &str) -> String {
    xml.join(&format!("plivo/{call}")).unwrap().to_string()
}

#[tokio::test]
async fn transfer_to_a_number_lands_with_each_carriers_document() {
    let sim = sim().await;
    let (xml, xml_base) = XmlServer::start().await;
    let http = reqwest::Client::new();
    for (carrier, good, _, call) in cases() {
        let t = transfer_for(carrier, TO, Some(CALLER), (&xml, &xml_base), call);
        transfer(&http, &sim.base_url(), &good, call, &t).await.unwrap();
    }
    let dial = format!(r#"<Response><Dial callerId="{CALLER}"><Number>{TO}</Number></Dial></Response>"#);
    let [twilio, telnyx, plivo, vonage] = cases().map(|c| c.3);
    let want = json!([
        {"carrier": "twilio", "call_id": twilio, "target": TO, "caller_id": CALLER, "twiml": dial},
        {"carrier": "telnyx", "call_id": telnyx, "target": TO, "caller_id": CALLER,
         "body": {"to": TO, "from": CALLER}},
        {"carrier": "plivo", "call_id": plivo, "aleg_url": plivo_url(&xml_base, plivo), "aleg_method": "POST",
         "xml": dial, "target": TO, "caller_id": CALLER, "fetch_error": null},
        {"carrier": "vonage", "call_id": vonage, "target": "14155550100", "caller_id": "14155550199",
         "ncco": [{"action": "connect", "from": "14155550199", "endpoint": [{"type": "phone", "number": "14155550100"}]}]},
    ]);
    assert_eq!(Value::Array(sim.transfers()), want);
    // Plivo fetched our XML with the verb we asked for, for this call.
    assert_eq!(*xml.hits.lock().unwrap(), vec![("POST".to_string(), plivo.to_string())]);
    // Other processes see the same list.
    let listed: Value =
        http.get(sim.base_url().join("/_sim/transfers").unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, want);
    assert!(sim.hangups().is_empty(), "a transfer is not a hang-up");
}

#[tokio::test]
async fn transfer_to_a_sip_uri_escapes_it_for_xml_and_keeps_it_in_json() {
    let sim = sim().await;
    let (xml, xml_base) = XmlServer::start().await;
    let http = reqwest::Client::new();
    for (carrier, good, _, call) in cases() {
        let mut t = transfer_for(carrier, SIP_WITH_AMP, None, (&xml, &xml_base), call);
        if carrier == "plivo" {
            t.plivo_xml = t.plivo_xml.map(|x| PlivoXml { method: XmlMethod::Get, ..x });
        }
        transfer(&http, &sim.base_url(), &good, call, &t).await.unwrap();
    }
    let escaped = "sip:desk@pbx.example.com?X-Ref=1&amp;X-Team=2";
    let [twilio, telnyx, plivo, vonage] = cases().map(|c| c.3);
    let want = json!([
        {"carrier": "twilio", "call_id": twilio, "target": SIP_WITH_AMP, "caller_id": null,
         "twiml": format!("<Response><Dial><Sip>{escaped}</Sip></Dial></Response>")},
        {"carrier": "telnyx", "call_id": telnyx, "target": SIP_WITH_AMP, "caller_id": null, "body": {"to": SIP_WITH_AMP}},
        {"carrier": "plivo", "call_id": plivo, "aleg_url": plivo_url(&xml_base, plivo), "aleg_method": "GET",
         "xml": format!("<Response><Dial><User>{escaped}</User></Dial></Response>"),
         "target": SIP_WITH_AMP, "caller_id": null, "fetch_error": null},
        {"carrier": "vonage", "call_id": vonage, "target": SIP_WITH_AMP, "caller_id": null,
         "ncco": [{"action": "connect", "endpoint": [{"type": "sip", "uri": SIP_WITH_AMP}]}]},
    ]);
    assert_eq!(Value::Array(sim.transfers()), want);
    assert_eq!(*xml.hits.lock().unwrap(), vec![("GET".to_string(), plivo.to_string())]);
}

#[tokio::test]
async fn a_transferred_call_is_no_longer_ours() {
    let sim = sim().await;
    let (xml, xml_base) = XmlServer::start().await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    for (carrier, good, _, call) in cases() {
        let t = transfer_for(carrier, TO, None, (&xml, &xml_base), call);
        transfer(&http, &base, &good, call, &t).await.unwrap();
        assert_eq!(hang_up(&http, &base, &good, call).await.unwrap(), HangUp::AlreadyEnded, "{carrier}");
        let again = transfer(&http, &base, &good, call, &t).await.unwrap_err();
        assert!(matches!(again, CarrierError::CallEnded(c) if c.as_str() == carrier), "{carrier}: {again:?}");
        if carrier != "twilio" {
            let err = send_dtmf(&http, &base, &good, call, "1").await.unwrap_err();
            assert_eq!(err.code(), "carrier_call_ended", "{carrier}");
        }
    }
    assert_eq!(sim.transfers().len(), 4, "the refused second transfers are not recorded");
    assert!(sim.hangups().is_empty() && sim.dtmf().is_empty());
}

#[tokio::test]
async fn a_call_that_ended_gives_call_ended_not_unauthorized() {
    let sim = sim().await;
    let (xml, xml_base) = XmlServer::start().await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    for (carrier, good, _, call) in cases() {
        assert_eq!(hang_up(&http, &base, &good, call).await.unwrap(), HangUp::Ended);
        let t = transfer_for(carrier, TO, None, (&xml, &xml_base), call);
        let err = transfer(&http, &base, &good, call, &t).await.unwrap_err();
        assert!(matches!(err, CarrierError::CallEnded(c) if c.as_str() == carrier), "{carrier}: {err:?}");
        assert_eq!(err.to_string(), format!("{carrier} says the call has already ended"));
        if carrier != "twilio" {
            let err = send_dtmf(&http, &base, &good, call, "123").await.unwrap_err();
            assert!(matches!(err, CarrierError::CallEnded(_)), "{carrier}: {err:?}");
        }
    }
    assert!(sim.transfers().is_empty() && sim.dtmf().is_empty());
    assert!(xml.hits.lock().unwrap().is_empty(), "Plivo fetches nothing for a call that is over");
}

/// A call id Twilio never had (or another account's) answers 404 code 20404 rather than the
/// 21220 of a finished call; both are CallEnded. The simulator knows every id, so a canned
/// Twilio answers here.
#[tokio::test]
async fn twilio_unknown_call_is_call_ended() {
    let body = json!({"code": 20404, "message": "The requested resource was not found", "status": 404});
    let app = Router::new().fallback(any(move || async move { (StatusCode::NOT_FOUND, axum::Json(body)) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let t = Transfer::to(Target::parse(TO).unwrap());
    let err = transfer(&reqwest::Client::new(), &base, &creds("twilio", TWILIO_TOKEN), "CAnone", &t).await;
    assert_eq!(err.unwrap_err().code(), "carrier_call_ended");
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_and_never_echoed() {
    let sim = sim().await;
    let (xml, xml_base) = XmlServer::start().await;
    let http = reqwest::Client::new();
    for (carrier, _, wrong, call) in cases() {
        let t = transfer_for(carrier, TO, None, (&xml, &xml_base), call);
        let err = transfer(&http, &sim.base_url(), &wrong, call, &t).await.unwrap_err();
        assert!(matches!(err, CarrierError::Unauthorized(c) if c.as_str() == carrier), "{carrier}: {err:?}");
        assert!(!format!("{err} {err:?}").contains(WRONG));
        if carrier != "twilio" {
            let err = send_dtmf(&http, &sim.base_url(), &wrong, call, "1").await.unwrap_err();
            assert_eq!(err.code(), "carrier_unauthorized", "{carrier}");
        }
    }
    assert!(sim.transfers().is_empty() && sim.dtmf().is_empty());
    assert_eq!(sim.requests(), 7, "every refused request did reach the carrier");
}

#[tokio::test]
async fn dtmf_lands_in_each_carriers_alphabet() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    for (carrier, good, _, call) in cases() {
        let result = send_dtmf(&http, &sim.base_url(), &good, call, "1w2W#*9").await;
        match carrier {
            "twilio" => {
                let err = result.unwrap_err();
                assert!(matches!(err, CarrierError::Unsupported { .. }), "{err:?}");
                assert_eq!(err.code(), "carrier_unsupported");
                assert_eq!(err.to_string(), "twilio cannot send DTMF on a streaming call");
            }
            _ => result.unwrap(),
        }
    }
    // Telnyx's A-D go through; Vonage has none.
    let telnyx = creds("telnyx", TELNYX_KEY);
    send_dtmf(&http, &sim.base_url(), &telnyx, "v3:abc", "ABCD").await.unwrap();
    let [_, telnyx_call, plivo, vonage] = cases().map(|c| c.3);
    let want = json!([
        {"carrier": "telnyx", "call_id": telnyx_call, "digits": "1w2W#*9"},
        {"carrier": "plivo", "call_id": plivo, "digits": "1w2W#*9"},
        {"carrier": "vonage", "call_id": vonage, "digits": "1p2pp#*9"},
        {"carrier": "telnyx", "call_id": "v3:abc", "digits": "ABCD"},
    ]);
    assert_eq!(Value::Array(sim.dtmf()), want);
    let listed: Value =
        http.get(sim.base_url().join("/_sim/dtmf").unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, want);
    assert_eq!(sim.requests(), 4, "Twilio's DTMF never left the client");
}

#[tokio::test]
async fn bad_arguments_never_reach_the_carrier() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    for bad in
        ["14155550100", "+1415", "+1 415 555 0100", "tel:+14155550100", "sip:", "sip:a b@x", "sip:\"a\"@x", "<sip:a@x>"]
    {
        assert_eq!(Target::parse(bad).unwrap_err().code(), "carrier_invalid_request", "{bad:?}");
    }
    assert!(PhoneNumber::parse("sip:a@example.com").is_err(), "a caller id is a number");
    for (carrier, good, _, call) in cases() {
        for digits in ["", "12 3", "1,2", "x", "p", &"1".repeat(65)] {
            let err = send_dtmf(&http, &base, &good, call, digits).await.unwrap_err();
            assert_eq!(err.to_string(), "invalid DTMF digits", "{carrier} {digits:?}");
        }
        let err = transfer(&http, &base, &good, "", &Transfer::to(Target::parse(TO).unwrap())).await.unwrap_err();
        assert_eq!(err.code(), "carrier_invalid_request", "{carrier}: empty call id");
    }
    let vonage = creds("vonage", PRIVATE);
    let err = send_dtmf(&http, &base, &vonage, "63f61863", "12A").await.unwrap_err();
    assert_eq!(err.to_string(), "invalid DTMF digits", "Vonage has no A-D");
    let plivo = creds("plivo", PLIVO_TOKEN);
    let mut t = Transfer::to(Target::parse(TO).unwrap());
    let err = transfer(&http, &base, &plivo, "u1", &t).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid Plivo XML URL", "Plivo needs the XML URL");
    t.plivo_xml = Some(PlivoXml { url: Url::parse("ftp://gw.example.com/x").unwrap(), method: XmlMethod::Get });
    assert_eq!(transfer(&http, &base, &plivo, "u1", &t).await.unwrap_err().code(), "carrier_invalid_request");
    assert_eq!(sim.requests(), 0, "nothing reached the simulator");
}

/// The simulator is strict about the XML it is sent, so a client that forgot to escape `&`
/// would be refused rather than pass unnoticed; and it never fetches off loopback.
#[tokio::test]
async fn simulator_refuses_unescaped_twiml_and_does_not_fetch_remote_xml() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let url = sim.base_url().join(&format!("/2010-04-01/Accounts/{TWILIO_SID}/Calls/CA1.json")).unwrap();
    let twiml = "<Response><Dial><Sip>sip:a@b.example?x=1&y=2</Sip></Dial></Response>";
    let form = url::form_urlencoded::Serializer::new(String::new()).append_pair("Twiml", twiml).finish();
    let resp = http
        .post(url)
        .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let plivo: Credentials = creds("plivo", PLIVO_TOKEN);
    let mut t = Transfer::to(Target::parse(TO).unwrap());
    t.plivo_xml =
        Some(PlivoXml { url: Url::parse("https://gw.example.com/plivo/x").unwrap(), method: XmlMethod::Post });
    transfer(&http, &sim.base_url(), &plivo, "u-remote", &t).await.unwrap();
    let [record] = sim.transfers().try_into().unwrap();
    assert_eq!(record["xml"], Value::Null);
    assert_eq!(record["fetch_error"], "aleg_url is not on loopback; the simulator does not fetch it");
}
