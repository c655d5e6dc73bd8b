//! The route table over real sockets, beyond what the carrier crate's tests drive: ids arrive
//! percent-decoded, a known path with another method is a `405` naming the allowed ones, an
//! unknown one the simulator's `404`, `/_sim/*` is not counted as a carrier request, and a
//! `204` carries neither body nor content type.

use carrier_sim::SimAccounts;
use serde_json::{json, Value};

const KEY: &str = "KEY-telnyx-1";

#[tokio::test]
async fn routes_methods_counting_and_decoded_ids() {
    let sim = carrier_sim::start(SimAccounts::default().telnyx(KEY).plivo("MA1", "tok")).await.unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{}", sim.base_url().as_str().trim_end_matches('/'), p);

    let resp = http.post(url("/v2/calls/v3:a%23b%2Fc/actions/send_dtmf")).bearer_auth(KEY);
    let resp = resp.json(&json!({"digits": "12"})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.dtmf(), [json!({"carrier": "telnyx", "call_id": "v3:a#b/c", "digits": "12"})]);

    let resp = http.get(url("/v2/calls/v3:1/actions/hangup")).bearer_auth(KEY).send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.headers()["allow"].to_str().unwrap()), (405, "POST"));
    let resp = http.put(url("/v1/Account/MA1/Call/u1/")).send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.headers()["allow"].to_str().unwrap()), (405, "DELETE,POST"));

    let resp = http.post(url("/v3/nowhere")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"error": "no such route in the carrier simulator"}));

    let resp = http.delete(url("/v1/Account/MA1/Call/u1/")).basic_auth("MA1", Some("tok")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().get("content-type").is_none() && resp.headers().get("content-length").is_none());
    assert_eq!(resp.bytes().await.unwrap().len(), 0);
    assert_eq!(sim.requests(), 5, "every carrier request counts, routed or not");

    let listed: Value = http.get(url("/_sim/hangups")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([{"carrier": "plivo", "call_id": "u1"}]));
    assert_eq!(http.post(url("/_sim/hangups")).send().await.unwrap().status(), 405);
    assert_eq!(http.get(url("/_sim/nothing")).send().await.unwrap().status(), 404);
    assert_eq!(sim.requests(), 5, "/_sim/* is not a carrier request");
}
