//! Agents that act, end to end: a production `switchboard serve` on `switchboard sim`'s
//! providers and carriers, an org whose agent declares tools, a local webhook receiver (the
//! org's service), and the recorded calls `tools.wav` ("what is the order status of order 4 2
//! 1 7?", then "please end call now") and `tools_line.wav` ("please send dtmf 1 2 3 4", then
//! "now transfer call to a person") played through carrier gateways by `switchboard call`.

mod util;

use serde_json::{json, Value};
use std::time::Duration;
use util::hook::Hook;
use util::*;

const ADMIN: &str = "admin-tools-token";
const MASTER: &str = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SIGNING: &str = "whsec_tools_test_secret";
const CRM_TOKEN: &str = "Bearer crm-secret-7781";
const TWILIO: (&str, &str) = ("AC0123456789abcdef0123456789abcdef", "twilio-auth-token-9f3a");
const TELNYX_API_KEY: &str = "KEYtelnyx-api-4e2b";
const TELNYX_SEED: [u8; 32] = [7u8; 32];
const PLIVO: (&str, &str) = ("MAPLIVOTOOLS00000001", "plivo-auth-token-31d8");
const KEYS: [(&str, &str, &str); 3] = [
    ("deepgram", "DEEPGRAM_API_KEY", "platform-dg-0001"),
    ("openai", "OPENAI_API_KEY", "platform-oa-0002"),
    ("elevenlabs", "ELEVENLABS_API_KEY", "platform-el-0003"),
];
const ORDER: &str = r#"{"status":"shipped","eta":"Tuesday"}"#;
const ORDER_SAID: &str = "I checked: eta Tuesday, status shipped.";

struct Env {
    server: Server,
    sim: Sim,
    key: String,
}

fn start() -> Env {
    start_with(Opts { allow_private: true, ..Opts::default() })
}

#[derive(Default)]
struct Opts {
    /// Pass `--webhooks-allow-private` (the receiver of these tests is on loopback).
    allow_private: bool,
    /// `switchboard sim --carrier-delay-ms`: a slow carrier.
    carrier_delay_ms: u64,
    /// Listen on a port known in advance and name it as `--public-url` (Plivo fetches the
    /// transfer's XML there).
    public_url: bool,
}

fn start_with(opts: Opts) -> Env {
    let accounts = [
        format!("twilio={}", json!({"accountSid": TWILIO.0, "authToken": TWILIO.1})),
        format!("telnyx={}", json!({"apiKey": TELNYX_API_KEY})),
        format!("plivo={}", json!({"authId": PLIVO.0, "authToken": PLIVO.1})),
    ];
    let delay = opts.carrier_delay_ms.to_string();
    let mut sim_args: Vec<&str> = vec!["--carrier-delay-ms", &delay];
    for a in &accounts {
        sim_args.extend(["--carrier-account", a.as_str()]);
    }
    let keys: Vec<(&str, &str)> = KEYS.iter().map(|(p, _, k)| (*p, *k)).collect();
    let sim = Sim::start(&keys, &sim_args);
    let mut args = sim.provider_args();
    // The org's webhook receiver runs on this machine: a private address the server refuses
    // to call unless the operator allows it.
    if opts.allow_private {
        args.push("--webhooks-allow-private".to_string());
    }
    for c in ["twilio", "telnyx", "plivo"] {
        args.extend(["--carrier-url".to_string(), format!("{c}={}", sim.urls["carrier"])]);
    }
    let mut env: Vec<(&str, String)> = KEYS.iter().map(|(_, v, k)| (*v, k.to_string())).collect();
    env.push(("SWITCHBOARD_ADMIN_TOKEN", ADMIN.into()));
    env.push(("SWITCHBOARD_MASTER_KEYS", MASTER.into()));
    let server_opts = ServerOpts { env, args };
    let server = if opts.public_url {
        Server::start_on_free_port(server_opts, |port| {
            let at = format!("127.0.0.1:{port}");
            vec!["--listen".into(), at.clone(), "--public-url".into(), format!("http://{at}")]
        })
    } else {
        Server::start(server_opts)
    };
    let org = json!({"name": "acme", "plan": "pro", "walletMicros": 20_000_000});
    let v = req(&server, "POST", "/api/admin/orgs", org, ADMIN, 201);
    let key = v["apiKey"].as_str().unwrap().to_string();
    let e = Env { server, sim, key };
    let creds = [
        ("twilio", json!({"accountSid": TWILIO.0, "authToken": TWILIO.1})),
        ("telnyx", json!({"publicKey": gwauth::telnyx::public_key_b64(&TELNYX_SEED), "apiKey": TELNYX_API_KEY})),
        ("plivo", json!({"authId": PLIVO.0, "authToken": PLIVO.1})),
    ];
    for (provider, c) in creds {
        e.req("PUT", "/api/credentials", json!({"provider": provider, "credentials": c}), 200);
    }
    e
}

fn req(server: &Server, method: &str, path: &str, body: Value, bearer: &str, want: u16) -> Value {
    let body = (!body.is_null()).then(|| body.to_string());
    let (status, text) = http(method, &format!("{}{path}", server.url), body.as_deref(), Some(bearer));
    assert_eq!(status, want, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

impl Env {
    fn req(&self, method: &str, path: &str, body: Value, want: u16) -> Value {
        req(&self.server, method, path, body, &self.key, want)
    }

    fn save_webhook_secrets(&self) {
        for (name, secret) in [("signing", SIGNING), ("crm", CRM_TOKEN)] {
            self.req("PUT", "/api/credentials", json!({"provider": "webhook", "name": name, "apiKey": secret}), 200);
        }
    }

    /// Registers an agent with `tools` and routes `number` on `carrier` to it.
    fn agent(&self, tools: Value, carrier: &str, number: &str) -> String {
        let mut spec = util::recorded::agent_spec();
        spec["tools"] = tools;
        let a = self.req("POST", "/api/agents", spec, 201);
        let id = a["id"].as_str().unwrap().to_string();
        self.req("POST", "/api/numbers", json!({"number": number, "carrier": carrier, "agentId": id}), 201);
        id
    }

    /// `switchboard call` of `recording` through `carrier`'s gateway to `number`.
    fn call(&self, recording: &str, carrier: &str, number: &str) -> CallOut {
        let cred = match carrier {
            "twilio" => json!({"accountSid": TWILIO.0, "authToken": TWILIO.1}),
            "plivo" => json!({"authId": PLIVO.0, "authToken": PLIVO.1}),
            _ => json!({"signingKey": base64(&TELNYX_SEED)}),
        }
        .to_string();
        let args = ["--gateway", carrier, "--number", number, "--carrier-credential", &cred, "--token", &self.key];
        call(&self.server.url, &asset(recording), &[&args[..], &["--tail", "3"]].concat())
    }

    fn carrier_sim(&self, path: &str) -> Value {
        get_json(&format!("{}{path}", self.sim.urls["carrier"]))
    }
}

fn base64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn order_tool(url: &str, timeout_ms: u64) -> Value {
    json!({
        "name": "order_status",
        "description": "Look up an order's status by its number.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        "filler": "One moment, let me check.",
        "run": {"type": "webhook", "url": url, "headers": {"Authorization": "crm"}, "timeoutMs": timeout_ms}
    })
}

fn end_tool() -> Value {
    json!({"name": "end_call", "run": {"type": "end_call", "closingLine": "Thanks for calling, goodbye."}})
}

/// The order webhook (answering after `delay`, given `timeout_ms`) and `end_call` on a Twilio
/// number, and the caller of `tools.wav` asking it.
fn order_call(env: &Env, delay: Duration, timeout_ms: u64, number: &str) -> (Hook, CallOut) {
    env.save_webhook_secrets();
    let hook = Hook::start(SIGNING, serde_json::from_str(ORDER).unwrap(), delay);
    env.agent(json!([order_tool(&hook.url, timeout_ms), end_tool()]), "twilio", number);
    let out = env.call("tools.wav", "twilio", number);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    (hook, out)
}

fn end_reason(out: &CallOut) -> String {
    out.of("end").first().and_then(|e| e["reason"].as_str()).unwrap_or("").to_string()
}

#[test]
fn a_webhook_answers_the_callers_question_then_end_call_hangs_up_through_the_carrier() {
    let env = start();
    let (hook, out) = order_call(&env, Duration::ZERO, 5000, "+15550001001");

    // The org's service got one signed call with the caller's order number and its own secret
    // header, and nothing of the platform's provider keys.
    let got = hook.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert!(r.signature_ok, "the signature verifies with the org's secret: {r:?}");
    assert_eq!(r.body["tool"], "order_status");
    assert_eq!(r.body["arguments"], json!({"order_id": "4217"}));
    assert_eq!(r.body["type"], "tool_call");
    assert_eq!(r.header("authorization"), Some(CRM_TOKEN));
    for (_, _, platform_key) in KEYS {
        assert!(!r.raw.contains(platform_key) && r.headers.iter().all(|(_, v)| !v.contains(platform_key)));
    }
    assert!(!r.raw.contains(SIGNING) && r.headers.iter().all(|(_, v)| !v.contains(SIGNING)));

    // The call printed the tool call and its result, and the agent voiced the answer.
    let calls = out.of("tool_call");
    assert_eq!(calls.iter().map(|c| c["name"].as_str().unwrap()).collect::<Vec<_>>(), ["order_status", "end_call"]);
    let results = out.of("tool_result");
    assert_eq!(
        results[0]["result"].as_str().map(|s| serde_json::from_str::<Value>(s).unwrap()),
        Some(serde_json::from_str(ORDER).unwrap())
    );
    let turns = out.agent_turns();
    assert!(turns[0].starts_with("One moment, let me check."), "{turns:?}");
    assert!(turns[0].ends_with(ORDER_SAID), "{turns:?}");

    // end_call: the closing line, then the session ends and the carrier hangs the call up.
    assert_eq!(turns.last().map(String::as_str), Some("Thanks for calling, goodbye."), "{turns:?}");
    assert_eq!(end_reason(&out), "agent_ended", "{}", out.stdout);
    let sid = out.call_sid();
    let hangups = env.carrier_sim("/_sim/hangups");
    assert!(hangups.to_string().contains(&sid), "hung up {sid} at the carrier: {hangups}");

    // Each LLM round is billed as its own lines. The simulator counts Σ(words + 4) per message
    // (+ 1 + argument words per call): the question's first round is the prompt "Be brief." (6)
    // and the question (15); its second adds the call (4 + 4) and the result (5). Then one round
    // for "please end call now", which calls end_call.
    let mut inputs: Vec<(u64, f64)> = out
        .of("usage")
        .into_iter()
        .filter(|u| u["line"] == "llm.input")
        .map(|u| (u["seq"].as_u64().unwrap(), u["quantity"].as_f64().unwrap()))
        .collect();
    inputs.sort_by_key(|(seq, _)| *seq);
    let quantities: Vec<f64> = inputs.iter().map(|(_, q)| *q).collect();
    assert_eq!(quantities.len(), 3, "one llm.input line per round: {quantities:?}\n{}", out.stdout);
    assert_eq!(quantities[..2], [21.0, 34.0], "{quantities:?}");
}

#[test]
fn a_tool_that_hangs_becomes_an_error_the_agent_talks_about() {
    let (_hook, out) = order_call(&start(), Duration::from_secs(4), 1000, "+15550001002");
    let results = out.of("tool_result");
    assert_eq!(results[0]["result"], r#"{"error":"the tool did not answer within 1000 ms"}"#, "{}", out.stdout);
    let turns = out.agent_turns();
    assert!(turns[0].ends_with("I checked: error the tool did not answer within 1000 ms."), "{turns:?}");
    assert_eq!(end_reason(&out), "agent_ended");
}

#[test]
fn the_caller_talking_during_a_tool_call_cancels_it() {
    // The service takes 12 s; the caller speaks again about 9 s after asking, so an answer not
    // cancelled would come back during the call (which goes on for 10 s more).
    let env = start();
    let (hook, out) = order_call(&env, Duration::from_secs(12), 30_000, "+15550001003");
    assert_eq!(out.of("barge_in").len(), 1, "{}", out.stdout);
    // The webhook was called and then abandoned: no result came back, its request was dropped.
    assert!(out.of("tool_result").iter().all(|r| r["name"] != "order_status"), "{}", out.stdout);
    let got = hook.got();
    assert_eq!(got.len(), 1);
    assert!(!got[0].answered, "the request was cancelled before the service answered");
    // The call went on: the caller's next words were heard and ended the call.
    assert_eq!(end_reason(&out), "agent_ended", "{}", out.stdout);
}

#[test]
fn dtmf_and_transfer_go_through_the_carrier_and_a_transfer_is_never_hung_up() {
    let env = start();
    let tools = json!([
        {"name": "send_dtmf", "run": {"type": "send_dtmf"}},
        {"name": "transfer_call", "filler": "Transferring you now.", "run": {"type": "transfer_call", "to": "+15550100200"}}
    ]);
    env.agent(tools, "telnyx", "+15550002001");
    let out = env.call("tools_line.wav", "telnyx", "+15550002001");
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let calls: Vec<_> = out.of("tool_call").iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(calls, ["send_dtmf", "transfer_call"], "{}", out.stdout);
    assert_eq!(end_reason(&out), "transferred", "{}", out.stdout);
    let sid = out.call_sid();
    let dtmf = env.carrier_sim("/_sim/dtmf").to_string();
    assert!(dtmf.contains("1234") && dtmf.contains(&sid), "the keys reached the carrier: {dtmf}");
    let transfers = env.carrier_sim("/_sim/transfers").to_string();
    assert!(
        transfers.contains("+15550100200") && transfers.contains(&sid),
        "the transfer reached the carrier: {transfers}"
    );
    let attempts = env.carrier_sim("/_sim/hangup-attempts");
    assert!(!attempts.to_string().contains(&sid), "a transferred call is never hung up: {attempts}");
    // Billing settled for the part of the call we served.
    assert!(out.of("usage").iter().any(|u| u["line"] == "llm.input"), "{}", out.stdout);
}

#[test]
fn a_transfer_already_issued_is_not_cancelled_by_the_caller_talking_over_it() {
    // In `barge_in.wav` the caller asks for "a long story" (which names the tool), then speaks
    // again about 3.5 s after the model called it. The carrier carries a transfer out 4.3 s
    // after it is asked, only if the server still waits for the answer then, and within the
    // carrier client's 5 s deadline.
    let env = start_with(Opts { carrier_delay_ms: 4300, ..Opts::default() });
    let transfer = json!([{
        "name": "long_story",
        "description": "Transfer the caller to the storyteller.",
        "filler": "Transferring you now.",
        "run": {"type": "transfer_call", "to": "+15550100300"}
    }]);
    env.agent(transfer, "telnyx", "+15550002003");
    let out = env.call("barge_in.wav", "telnyx", "+15550002003");
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.of("tool_call").len(), 1, "{}", out.stdout);
    assert_eq!(out.of("barge_in").len(), 1, "the caller talked over the waiting turn: {}", out.stdout);
    assert!(out.of("tool_result").is_empty(), "the round was cut before the carrier answered: {}", out.stdout);
    assert_eq!(end_reason(&out), "transferred", "the transfer went on and ended the session: {}", out.stdout);
    let sid = out.call_sid();
    let transfers = env.carrier_sim("/_sim/transfers").to_string();
    assert!(transfers.contains("+15550100300") && transfers.contains(&sid), "carried out: {transfers}");
    let attempts = env.carrier_sim("/_sim/hangup-attempts");
    assert!(!attempts.to_string().contains(&sid), "a transferred call is never hung up: {attempts}");
}

#[test]
fn a_plivo_transfer_fetches_its_dial_document_from_the_servers_public_url() {
    let env = start_with(Opts { public_url: true, ..Opts::default() });
    let tools = json!([{"name": "transfer_call", "run": {"type": "transfer_call", "to": "sip:desk@pbx.example.com"}}]);
    env.agent(tools, "plivo", "+15550002004");
    let out = env.call("tools_line.wav", "plivo", "+15550002004");
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(end_reason(&out), "transferred", "{}", out.stdout);
    let sid = out.call_sid();
    let transfers = env.carrier_sim("/_sim/transfers");
    let t = transfers.as_array().and_then(|a| a.iter().find(|t| t["call_id"] == sid.as_str())).cloned();
    let t = t.unwrap_or_else(|| panic!("no transfer of {sid}: {transfers}"));
    assert_eq!(
        t["aleg_url"].as_str().unwrap(),
        format!("{}/plivo/transfer.xml?to=sip%3Adesk%40pbx.example.com", env.server.url)
    );
    assert_eq!(t["target"], "sip:desk@pbx.example.com", "Plivo dialled what the server's XML said: {t}");
    assert_eq!(t["fetch_error"], Value::Null, "{t}");
    let attempts = env.carrier_sim("/_sim/hangup-attempts");
    assert!(!attempts.to_string().contains(&sid), "a transferred call is never hung up: {attempts}");
}

#[test]
fn dtmf_on_twilio_is_an_error_result_and_the_call_goes_on() {
    let env = start();
    let tools = json!([{"name": "send_dtmf", "run": {"type": "send_dtmf"}}]);
    env.agent(tools, "twilio", "+15550002002");
    let out = env.call("tools_line.wav", "twilio", "+15550002002");
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let result = out.of("tool_result")[0]["result"].as_str().unwrap().to_string();
    assert!(result.contains("error") && result.contains("cannot send DTMF"), "{result}");
    assert_eq!(out.agent_turns().len(), 2, "the call went on to the next question: {}", out.stdout);
}

#[test]
fn tools_are_checked_when_the_agent_is_registered() {
    let env = start();
    let with = |tools: Value| {
        let mut spec = util::recorded::agent_spec();
        spec["tools"] = tools;
        spec
    };
    let refused = |tools: Value, code: &str| {
        let v = env.req("POST", "/api/agents", with(tools), 400);
        assert_eq!(v["error"]["code"], code, "{v}");
    };
    let hook = |url: &str| json!([{"name": "t", "run": {"type": "webhook", "url": url}}]);
    refused(hook("https://crm.example/tools"), "WEBHOOK_SECRET_REQUIRED");
    env.save_webhook_secrets();
    env.req("POST", "/api/agents", with(hook("https://crm.example/tools")), 201);
    refused(hook("http://crm.example/tools"), "WEBHOOK_INVALID");
    refused(
        json!([{"name": "t", "run": {"type": "webhook", "url": "https://a.example", "headers": {"X-Key": "nope"}}}]),
        "WEBHOOK_SECRET_REQUIRED",
    );
    refused(json!([{"name": "no spaces", "run": {"type": "end_call"}}]), "TOOL_NAME_INVALID");
    refused(json!([{"name": "t", "run": {"type": "transfer_call", "to": "12345"}}]), "TRANSFER_TARGET_INVALID");
    refused(
        json!([{"name": "t", "run": {"type": "end_call"}}, {"name": "t", "run": {"type": "send_dtmf"}}]),
        "TOOL_NAME_DUPLICATE",
    );
    let v = env.req("POST", "/api/agents", with(json!([{"name": "t", "run": {"type": "teleport"}}])), 400);
    assert!(v.to_string().contains("run"), "an unknown tool type is named: {v}");
    // The stored agent reads back with its tools, and no secret in it.
    let list = env.req("GET", "/api/agents", Value::Null, 200);
    assert!(list.to_string().contains("crm.example") && !list.to_string().contains(SIGNING), "{list}");
}

/// Webhook secrets are the org's own: another org cannot register a tool that names a secret
/// only this org saved, and when both orgs keep secrets under the same names, each org's calls
/// send its own values and never the other's.
#[test]
fn a_webhook_never_carries_another_orgs_secrets() {
    let env = start();
    env.save_webhook_secrets();
    let v = req(&env.server, "POST", "/api/admin/orgs", json!({"name": "other", "plan": "pro"}), ADMIN, 201);
    let other = v["apiKey"].as_str().unwrap().to_string();
    let mut spec = util::recorded::agent_spec();
    spec["tools"] = json!([order_tool("https://crm.example/tools", 5000)]);
    let refused = req(&env.server, "POST", "/api/agents", spec.clone(), &other, 400);
    assert_eq!(refused["error"]["code"], "WEBHOOK_SECRET_REQUIRED", "acme's `crm` is not the other org's: {refused}");

    let (other_signing, other_crm) = ("whsec_other_org", "Bearer other-org-crm-0042");
    for (name, secret) in [("signing", other_signing), ("crm", other_crm)] {
        let body = json!({"provider": "webhook", "name": name, "apiKey": secret});
        req(&env.server, "PUT", "/api/credentials", body, &other, 200);
    }
    req(&env.server, "POST", "/api/agents", spec, &other, 201);

    let (hook, _) = order_call(&env, Duration::ZERO, 5000, "+15550001009");
    let got = hook.got();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert!(r.signature_ok, "signed with acme's own secret: {r:?}");
    assert_eq!(r.header("authorization"), Some(CRM_TOKEN));
    for other_secret in [other_signing, other_crm] {
        assert!(!r.raw.contains(other_secret) && r.headers.iter().all(|(_, v)| !v.contains(other_secret)));
    }
}

#[test]
fn webhooks_to_private_addresses_are_refused_unless_the_operator_allows_them() {
    let env = start_with(Opts::default());
    env.save_webhook_secrets();
    for url in [
        "http://127.0.0.1:9000/tools",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/x",
        "http://localhost:9000/tools",
    ] {
        let mut spec = util::recorded::agent_spec();
        spec["tools"] = json!([{"name": "t", "run": {"type": "webhook", "url": url}}]);
        let v = env.req("POST", "/api/agents", spec, 400);
        assert_eq!(v["error"]["code"], "WEBHOOK_INVALID", "{url}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("--webhooks-allow-private"), "{v}");
    }
}

/// Where Plivo fetches a transfer's dial instructions: the `<Dial>` for a valid target, a 400
/// for anything else (it says only where to dial, so it needs no credential).
#[test]
fn the_plivo_transfer_document_dials_only_a_valid_target() {
    let env = start();
    let (status, xml) = http_get(&format!("{}/plivo/transfer.xml?to=%2B15550100200", env.server.url));
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains("<Dial") && xml.contains("<Number>+15550100200</Number>"), "{xml}");
    let (status, sip) = http_get(&format!("{}/plivo/transfer.xml?to=sip:desk@pbx.example.com", env.server.url));
    assert_eq!(status, 200, "{sip}");
    assert!(sip.contains("<User>sip:desk@pbx.example.com</User>"), "{sip}");
    for bad in ["12345", "%3CScript%3E", ""] {
        let (status, body) = http_get(&format!("{}/plivo/transfer.xml?to={bad}", env.server.url));
        assert_eq!(status, 400, "{bad}: {body}");
    }
}
