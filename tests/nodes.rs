//! Several nodes behind a real load balancer: two `switchboard serve` nodes started from
//! `deploy/switchboard@.service` on one Postgres database, HAProxy (Debian's package) in front
//! with `deploy/haproxy.cfg`, and `switchboard sim` as every provider.
//!
//! - calls placed through HAProxy spread over both nodes, and each call's watcher (its events
//!   stream, also through HAProxy) may land on the other node;
//! - any node answers the API and streams the live events of a call running on the other, to
//!   its own org only;
//! - a rate change made on one node is used by the other's very next session (notification);
//! - a node killed mid-call has its session closed at its last checkpoint by the survivor
//!   within the lease, its hold released and its usage charged exactly once.

mod util;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::recorded::agent_spec;
use util::unit::{Unit, UnitProc};
use util::{asset, free_port, http, root, PgDb, Proc, Sim};

const ADMIN: &str = "admin-nodes-token";
const MASTER: &str = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const STREAM_KEYS: &str = "1:c3dpdGNoYm9hcmQtbm9kZXMtdGVzdC1zdHJlYW1rZXk=";
const LEASE_SECS: u64 = 3;
/// Platform keys the simulators accept and both nodes hold.
const KEYS: [(&str, &str, &str); 3] = [
    ("deepgram", "DEEPGRAM_API_KEY", "platform-dg-0001"),
    ("openai", "OPENAI_API_KEY", "platform-oa-0002"),
    ("elevenlabs", "ELEVENLABS_API_KEY", "platform-el-0003"),
];

/// Two nodes (`a`, `b`) from the systemd unit, HAProxy in front, one org with an agent.
struct Cluster {
    db: PgDb,
    _sim: Sim,
    nodes: Vec<(String, UnitProc)>,
    _haproxy: Proc,
    lb: String,
    key: String,
    org: String,
    agent: String,
    etc: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let haproxy = Command::new("haproxy").arg("-v").output();
        assert!(
            haproxy.is_ok_and(|o| o.status.success()),
            "HAProxy is required (apt-get install haproxy, or scripts/install-deps.sh)"
        );
        let db = PgDb::create();
        let sim = Sim::start(&KEYS.map(|(p, _, k)| (p, k)), &[]);
        let etc = std::env::temp_dir().join(format!("sb-nodes-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&etc).expect("config dir");
        let urls: Vec<String> = sim.provider_args().into_iter().filter(|a| a != "--provider-url").collect();
        let mut shared = format!(
            "SWITCHBOARD_DATABASE={}\nSWITCHBOARD_ADMIN_TOKEN={ADMIN}\nSWITCHBOARD_MASTER_KEYS={MASTER}\n\
             SWITCHBOARD_STREAM_KEYS={STREAM_KEYS}\nSWITCHBOARD_LEASE_SECS={LEASE_SECS}\n\
             SWITCHBOARD_CHECKPOINT_SECS=1\nSWITCHBOARD_PROVIDER_URLS={}\n",
            db.url,
            urls.join(",")
        );
        for (_, var, k) in KEYS {
            shared.push_str(&format!("{var}={k}\n"));
        }
        std::fs::write(etc.join("switchboard.env"), shared).expect("switchboard.env");
        let unit = Unit::read(&root().join("deploy/switchboard@.service"));
        let nodes: Vec<(String, UnitProc)> = ["a", "b"]
            .into_iter()
            .map(|id| {
                std::fs::write(etc.join(format!("{id}.env")), "SWITCHBOARD_LISTEN=127.0.0.1:0\n").expect("node env");
                (id.to_string(), unit.start(id, &etc))
            })
            .collect();
        let port = free_port();
        let addr = |i: usize| nodes[i].1.url.trim_start_matches("http://").to_string();
        let mut child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(root().join("deploy/haproxy.cfg"))
            .env("SWITCHBOARD_LB_BIND", format!("127.0.0.1:{port}"))
            .env("SWITCHBOARD_NODE_A", addr(0))
            .env("SWITCHBOARD_NODE_B", addr(1))
            .stdout(std::fs::File::create(etc.join("haproxy.log")).expect("log"))
            .stderr(std::fs::File::create(etc.join("haproxy.err")).expect("log"))
            .spawn()
            .expect("start haproxy");
        let lb = format!("http://127.0.0.1:{port}");
        let listening = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        let err = etc.join("haproxy.err");
        let why = || std::fs::read_to_string(&err).unwrap_or_default();
        wait_until("HAProxy listens", Duration::from_secs(10), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("HAProxy exited ({status}): {}", why());
            }
            listening()
        });
        wait_until("HAProxy reaches a node", Duration::from_secs(10), || {
            http("GET", &format!("{lb}/healthz"), None, None).0 == 200
        });
        let org = api(&lb, "POST", "/api/admin/orgs", Some(json!({"name": "acme", "plan": "pro"})), ADMIN, 201);
        let key = org["apiKey"].as_str().expect("apiKey").to_string();
        let spec = agent_spec();
        let agent = api(&lb, "POST", "/api/agents", Some(spec), &key, 201)["id"].as_str().expect("agent").to_string();
        Cluster {
            db,
            _sim: sim,
            nodes,
            _haproxy: Proc { child },
            lb,
            key,
            org: org["orgId"].as_str().expect("orgId").to_string(),
            agent,
            etc,
        }
    }

    fn node(&self, id: &str) -> &UnitProc {
        &self.nodes.iter().find(|(n, _)| n == id).unwrap_or_else(|| panic!("no node {id}")).1
    }

    /// `switchboard call` of a recording to the org's agent through `server`, run to its end.
    fn call(&self, server: &str, file: &str, extra: &[&str]) -> util::CallOut {
        let mut args = vec!["--agent", &self.agent, "--token", &self.key];
        args.extend_from_slice(extra);
        util::call(server, &asset(file), &args)
    }

    /// Another org, with its own key: for the refusals.
    fn other_org_key(&self) -> String {
        let org = api(&self.lb, "POST", "/api/admin/orgs", Some(json!({"name": "other", "plan": "pro"})), ADMIN, 201);
        org["apiKey"].as_str().expect("apiKey").to_string()
    }

    /// The first open session of the org, by polling `server`'s calls list.
    fn wait_open_session(&self, server: &str) -> Value {
        let mut found = Value::Null;
        wait_until("an open session", Duration::from_secs(20), || {
            let list = api(server, "GET", "/api/calls?limit=20", None, ADMIN, 200);
            let open = list["calls"].as_array().and_then(|c| c.iter().find(|s| s["status"] == "open").cloned());
            found = open.unwrap_or(Value::Null);
            !found.is_null()
        });
        found
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.etc);
        } else {
            for f in ["a.log", "b.log", "haproxy.log", "haproxy.err"] {
                let text = std::fs::read_to_string(self.etc.join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {f} (last lines, newest first)\n{}", tail.join("\n"));
            }
        }
    }
}

#[test]
fn calls_through_haproxy_spread_over_both_nodes_and_any_node_serves_any_call() {
    let c = Cluster::start();
    let other = c.other_org_key();
    // Four calls at once: HAProxy (leastconn) spreads them; each call's watcher (its events
    // stream, also through HAProxy) is on whichever node had fewer connections.
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (lb, agent, key) = (c.lb.clone(), c.agent.clone(), c.key.clone());
            std::thread::spawn(move || util::call(&lb, &asset("simple.wav"), &["--agent", &agent, "--token", &key]))
        })
        .collect();
    // Meanwhile, a session running on one node is watched through the other.
    let live = c.wait_open_session(&c.lb);
    let (sid, runs_on) =
        (live["session_id"].as_str().expect("sid").to_string(), live["node_id"].as_str().expect("node").to_string());
    let watch_on = if runs_on == "a" { c.node("b") } else { c.node("a") };
    let path = format!("/api/sessions/{sid}/events");
    let refused = http("GET", &format!("{}{path}", watch_on.url), None, Some(&other));
    let refused_here = http("GET", &format!("{}{path}", c.node(&runs_on).url), None, Some(&other));
    assert_eq!(refused.0, 404, "another org: {refused:?}");
    assert_eq!(refused, refused_here, "the same refusal on either node");
    let events = sse_until_end(&format!("{}{path}", watch_on.url), &c.key, Duration::from_secs(40));
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(types.contains(&"transcript") && types.contains(&"agent"), "relayed events: {types:?}");
    assert_eq!(types.last(), Some(&"end"), "the stream ends with the call: {types:?}");

    let mut served_by = std::collections::BTreeSet::new();
    for t in calls {
        let out = t.join().expect("call thread");
        assert!(out.ok, "call failed: {}\n{}", out.stderr, out.stdout);
        assert!(!out.texts("transcript").is_empty(), "the watcher got the call's events: {}", out.stdout);
        assert!(!out.agent_turns().is_empty(), "the agent answered: {}", out.stdout);
        let sid = out.call_sid();
        let on_a = api(&c.node("a").url, "GET", &format!("/api/calls/{sid}"), None, &c.key, 200);
        let on_b = api(&c.node("b").url, "GET", &format!("/api/calls/{sid}"), None, &c.key, 200);
        assert_eq!(on_a, on_b, "both nodes answer the same for {sid}");
        assert_eq!(on_a["status"], "closed");
        served_by.insert(on_a["node_id"].as_str().expect("node_id").to_string());
        api(&c.node("a").url, "GET", &format!("/api/calls/{sid}"), None, &other, 404);
    }
    assert_eq!(served_by.into_iter().collect::<Vec<_>>(), ["a", "b"], "calls spread over both nodes");
}

#[test]
fn a_rate_change_on_one_node_reaches_the_others_next_session_by_notification() {
    let c = Cluster::start();
    let rate = json!({"service": "stt", "provider": "deepgram", "model": "nova-3", "unit": "audio_minute",
                      "priceMicros": 9_999, "managed": true});
    api(&c.node("a").url, "PUT", "/api/admin/rates", Some(rate), ADMIN, 200);
    // At once, on the other node: no restart, no wait, and no per-session version check.
    let out = c.call(&c.node("b").url, "simple.wav", &["--fast"]);
    assert!(out.ok, "call failed: {}", out.stderr);
    let session = api(&c.node("b").url, "GET", &format!("/api/calls/{}", out.call_sid()), None, &c.key, 200);
    assert_eq!(session["node_id"], "b");
    assert_eq!(session["plan"]["stt"]["rates"][0]["price"], 9_999, "plan: {}", session["plan"]["stt"]);
    let log = std::fs::read_to_string(&c.node("b").log).unwrap_or_default();
    assert!(
        log.lines().any(|l| l.contains("rate table reloaded") && l.contains("notified")),
        "node b reloaded on the notification"
    );
}

#[test]
fn a_node_killed_mid_call_has_its_session_closed_by_the_survivor_and_charged_once() {
    let mut c = Cluster::start();
    let mut caller = Command::new(util::bin())
        .arg("call")
        .arg(asset("multi_turn.wav"))
        .args(["--server", &c.lb, "--json", "--agent", &c.agent, "--token", &c.key])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the call");
    let live = c.wait_open_session(&c.lb);
    let sid = live["session_id"].as_str().expect("sid").to_string();
    let victim = live["node_id"].as_str().expect("node").to_string();
    let survivor = if victim == "a" { "b" } else { "a" }.to_string();
    let survivor_url = c.node(&survivor).url.clone();
    let session = |url: &str| api(url, "GET", &format!("/api/sessions/{sid}"), None, &c.key, 200);
    wait_until("a checkpoint of the call", Duration::from_secs(20), || {
        session(&survivor_url)["usage"].as_array().is_some_and(|u| !u.is_empty())
    });
    // A watcher on the survivor sees the call end when the survivor takes it over.
    let watch_url = format!("{survivor_url}/api/sessions/{sid}/events");
    let key = c.key.clone();
    let watcher = std::thread::spawn(move || sse_until_end(&watch_url, &key, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(300));

    let killed_at = Instant::now();
    let victim_proc = &mut c.nodes.iter_mut().find(|(n, _)| *n == victim).expect("victim").1.proc.child;
    victim_proc.kill().expect("kill -9 the node");
    let _ = victim_proc.wait();
    let mut closed = Value::Null;
    wait_until("the survivor closes the session", Duration::from_secs(LEASE_SECS * 4), || {
        closed = session(&survivor_url);
        closed["status"] == "closed"
    });
    let took = killed_at.elapsed();
    eprintln!("the survivor closed the lost session {took:?} after the kill");
    assert!(took <= Duration::from_secs(LEASE_SECS + 2), "closed {took:?} after the kill (lease {LEASE_SECS} s)");
    assert_eq!(closed["end_reason"], "node_lost");
    let usage = closed["usage"].as_array().expect("usage").clone();
    let last_checkpoint = usage.iter().filter_map(|u| u["created_at_ms"].as_i64()).max();
    assert_eq!(closed["ended_at_ms"].as_i64(), last_checkpoint, "closed at its last checkpoint");
    let _ = caller.kill();
    let _ = caller.wait();

    let events = watcher.join().expect("watcher");
    assert_eq!(events.last().map(|e| e["reason"].clone()), Some(json!("node_lost")), "watcher: {events:?}");
    assert_eq!(
        c.db.query(&format!("SELECT COUNT(*) FROM holds WHERE session_id = '{sid}'")).trim(),
        "0",
        "hold released"
    );
    let ledger = |c: &Cluster| {
        let q = format!(
            "SELECT o.credits_used_micros - o.wallet_micros, (SELECT COALESCE(SUM(amount_micros), 0) FROM usage_records
             WHERE org_id = o.id), (SELECT COUNT(*) FROM usage_records WHERE session_id = '{sid}') FROM orgs o WHERE o.id = '{}'",
            c.org
        );
        c.db.query(&q).trim().to_string()
    };
    let before = ledger(&c);
    let cols: Vec<&str> = before.split('|').collect();
    assert_eq!(cols[0], cols[1], "charged (credits + wallet) = the usage records, once: {before}");
    assert_ne!(cols[2], "0");
    // Another lease later nothing more was charged or written.
    std::thread::sleep(Duration::from_secs(LEASE_SECS));
    assert_eq!(ledger(&c), before);
    assert_eq!(session(&survivor_url)["end_reason"], "node_lost");
}

/// One API request through `base` that must answer `want`; its JSON body.
fn api(base: &str, method: &str, path: &str, body: Option<Value>, bearer: &str, want: u16) -> Value {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(method, &format!("{base}{path}"), body.as_deref(), Some(bearer));
    assert_eq!(status, want, "{method} {base}{path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Server-sent events of `url` until an `end` event (or `within`), as JSON values.
fn sse_until_end(url: &str, bearer: &str, within: Duration) -> Vec<Value> {
    let (url, bearer) = (url.to_string(), bearer.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let mut resp = reqwest::Client::new().get(&url).bearer_auth(&bearer).send().await.expect("events request");
            assert_eq!(resp.status(), 200, "GET {url}");
            let (mut buf, mut events) = (String::new(), Vec::new());
            let deadline = tokio::time::Instant::now() + within;
            while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(i) = buf.find("\n\n") {
                    let block: String = buf.drain(..i + 2).collect();
                    for data in block.lines().filter_map(|l| l.strip_prefix("data:")) {
                        let ev: Value = serde_json::from_str(data.trim()).expect("event json");
                        let end = ev["type"] == "end";
                        events.push(ev);
                        if end {
                            return events;
                        }
                    }
                }
            }
            events
        })
    })
    .join()
    .expect("events thread")
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}
