//! The client against the simulator, carrier by carrier: what a session's hang-up and a Telnyx
//! answer really send, and what the simulator makes of it.

mod util;

use carrier::{hang_up, telnyx_answer_and_stream, CarrierError, Credentials, HangUp};
use secrecy::SecretString;
use serde_json::{json, Value};
use util::*;

#[tokio::test]
async fn hang_up_ends_once_then_already_ended_for_every_carrier() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let mut expected = Vec::new();
    for (carrier, good, _, call_id) in cases() {
        assert_eq!(hang_up(&http, &base, &good, call_id).await.unwrap(), HangUp::Ended, "{carrier}");
        expected.push((carrier.to_string(), call_id.to_string()));
        assert_eq!(sim.hangups(), expected, "{carrier}");
        assert_eq!(hang_up(&http, &base, &good, call_id).await.unwrap(), HangUp::AlreadyEnded, "{carrier}");
        assert_eq!(sim.hangups(), expected, "a repeat is not a second hang-up ({carrier})");
    }
    // The same list over HTTP, for processes that only have the URL.
    let listed: Value = http.get(base.join("/_sim/hangups").unwrap()).send().await.unwrap().json().await.unwrap();
    let want: Vec<Value> = expected.iter().map(|(c, id)| json!({"carrier": c, "call_id": id})).collect();
    assert_eq!(listed, Value::Array(want));
}

#[tokio::test]
async fn wrong_credential_is_unauthorized_and_never_echoed() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    for (carrier, _, wrong, call_id) in cases() {
        let err = hang_up(&http, &sim.base_url(), &wrong, call_id).await.unwrap_err();
        assert!(matches!(err, CarrierError::Unauthorized(c) if c.as_str() == carrier), "{carrier}: {err:?}");
        assert_eq!(err.code(), "carrier_unauthorized");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(WRONG) && !shown.contains("PRIVATE KEY"), "{shown}");
    }
    assert!(sim.hangups().is_empty());
}

#[tokio::test]
async fn unregistered_vonage_application_is_unauthorized() {
    let sim = sim().await;
    let json = json!({"applicationId": "someone-else", "privateKey": PRIVATE, "signatureSecret": "s"});
    let stranger = Credentials::parse("vonage", &json.to_string()).unwrap();
    let err = hang_up(&reqwest::Client::new(), &sim.base_url(), &stranger, "63f61863").await.unwrap_err();
    assert_eq!(err.code(), "carrier_unauthorized");
}

#[tokio::test]
async fn telnyx_answer_then_stream_is_recorded_with_the_token() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let key = SecretString::from(TELNYX_KEY);
    let id = "v3:abc-123_X";
    let token = "01016553f13c11111111111111111111111111111111660d7675265ac76062959d27d0c4f0cd";
    telnyx_answer_and_stream(&http, &sim.base_url(), &key, id, "wss://gw.example.com/ws/telnyx", token).await.unwrap();
    let stream = json!({
        "stream_url": "wss://gw.example.com/ws/telnyx",
        "stream_track": "inbound_track",
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": "PCMU",
        "stream_auth_token": token,
    });
    let want = vec![
        json!({"carrier": "telnyx", "action": "answer", "call_control_id": id, "body": {}}),
        json!({"carrier": "telnyx", "action": "streaming_start", "call_control_id": id, "body": stream}),
    ];
    assert_eq!(sim.actions(), want);
    let listed: Value =
        http.get(sim.base_url().join("/_sim/actions").unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, Value::Array(want));

    // A caller gone before we answer: Telnyx's 90018 becomes CallEnded.
    let creds = creds("telnyx", TELNYX_KEY);
    assert_eq!(hang_up(&http, &sim.base_url(), &creds, "v3:gone").await.unwrap(), HangUp::Ended);
    let err =
        telnyx_answer_and_stream(&http, &sim.base_url(), &key, "v3:gone", "wss://gw/ws", token).await.unwrap_err();
    assert_eq!(err.code(), "carrier_call_ended");

    // Anything else Telnyx refuses keeps its status and code.
    let err =
        telnyx_answer_and_stream(&http, &sim.base_url(), &key, "v3:y", "https://not-ws", token).await.unwrap_err();
    assert!(matches!(&err, CarrierError::Rejected { status: 422, code: Some(c), .. } if c == "10015"), "{err:?}");
    assert_eq!(err.to_string(), "telnyx answered HTTP 422 (code 10015)");

    let wrong = SecretString::from(WRONG);
    let err = telnyx_answer_and_stream(&http, &sim.base_url(), &wrong, "v3:x", "wss://gw/ws", token).await.unwrap_err();
    assert_eq!(err.code(), "carrier_unauthorized");
    assert!(!format!("{err} {err:?}").contains(token));
    let err = telnyx_answer_and_stream(&http, &sim.base_url(), &key, "v3:x", "wss://gw/ws", &"t".repeat(4001)).await;
    assert_eq!(err.unwrap_err().code(), "carrier_invalid_request");
    // v3:y was answered; its refused streaming_start is not recorded.
    assert_eq!(sim.actions().len(), 3, "refused requests are not recorded");
}

#[tokio::test]
async fn simulator_answers_in_each_carriers_error_shape() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let url = |p: &str| sim.base_url().join(p).unwrap();

    let resp = http.post(url("/2010-04-01/Accounts/AC1/Calls/CA1.json")).body("Status=completed").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 20003);

    // Right credentials, but no Status=completed: refused, and the call stays live.
    let resp = http
        .post(url("/2010-04-01/Accounts/AC00000000000000000000000000000001/Calls/CA1.json"))
        .basic_auth("AC00000000000000000000000000000001", Some(TWILIO_TOKEN))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Status=in-progress")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let resp = http.post(url("/v2/calls/v3:1/actions/hangup")).bearer_auth(WRONG).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["errors"][0]["code"], "10009");

    // Plivo's URL keeps its trailing slash; without it there is no such resource.
    let resp = http
        .delete(url("/v1/Account/MAXXXXXXXXXXXXXXXXXX/Call/u1"))
        .basic_auth("MAXXXXXXXXXXXXXXXXXX", Some(PLIVO_TOKEN));
    assert_eq!(resp.send().await.unwrap().status(), 404);

    let resp = http.put(url("/v1/calls/u1")).bearer_auth("not.a.jwt").json(&json!({"action": "hangup"}));
    let resp = resp.send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["title"], "Unauthorized");
    assert!(sim.hangups().is_empty());
}

#[tokio::test]
async fn a_silent_carrier_times_out_and_a_closed_port_is_unreachable() {
    let http = reqwest::Client::new();
    let creds = creds("plivo", PLIVO_TOKEN);
    // Accepts connections (the backlog) but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}", silent.local_addr().unwrap())).unwrap();
    let started = std::time::Instant::now();
    let err = hang_up(&http, &base, &creds, "u1").await.unwrap_err();
    assert_eq!(err.code(), "carrier_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(7));
    drop(silent);

    // Bound without listening: refuses connections, and no concurrent test can be given the port.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let base = url::Url::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap();
    let err = hang_up(&http, &base, &creds, "u1").await.unwrap_err();
    assert_eq!(err.code(), "carrier_unreachable");
}

#[tokio::test]
async fn dropping_the_simulator_stops_it() {
    let sim = sim().await;
    let base = sim.base_url();
    drop(sim);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let err = hang_up(&reqwest::Client::new(), &base, &creds("telnyx", TELNYX_KEY), "v3:1").await.unwrap_err();
    assert_eq!(err.code(), "carrier_unreachable");
}
