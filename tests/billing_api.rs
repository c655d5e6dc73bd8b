//! Keys and billing through the HTTP API of a real `switchboard serve` process, with calls
//! placed by `switchboard call` against `switchboard sim`.

mod util;

use serde_json::{json, Value};
use util::*;

const ADMIN: &str = "admin-test-token";
/// `k1:` + base64 of 32 bytes: a fixed test master key.
const MASTER: &str = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

// Fields drop in order: the server stops before its Postgres database is dropped.
struct Env {
    server: Server,
    sim: Sim,
    pg: Option<PgDb>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

/// Every rule is tested on both stores.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Db::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Db::Postgres) } )*
        }
    };
}

fn start_on(db: Db, extra_sim_keys: &[(&str, &str)]) -> Env {
    start_as(db, extra_sim_keys, server_env())
}

fn start_as(db: Db, extra_sim_keys: &[(&str, &str)], env: Vec<(&'static str, String)>) -> Env {
    let mut keys = vec![
        ("deepgram", "platform-dg-0001"),
        ("openai", "platform-oa-0002"),
        ("elevenlabs", "platform-el-0003"),
        ("anthropic", "platform-an-0004"),
        ("google", "platform-go-0005"),
    ];
    keys.extend_from_slice(extra_sim_keys);
    let sim = Sim::start(&keys, &[]);
    let pg = (db == Db::Postgres).then(PgDb::create);
    let server =
        Server::start_with_db(ServerOpts { env, args: sim.provider_args() }, pg.as_ref().map(|p| p.url.clone()));
    Env { server, sim, pg }
}

fn server_env() -> Vec<(&'static str, String)> {
    vec![
        ("DEEPGRAM_API_KEY", "platform-dg-0001".into()),
        ("OPENAI_API_KEY", "platform-oa-0002".into()),
        ("ELEVENLABS_API_KEY", "platform-el-0003".into()),
        ("ANTHROPIC_API_KEY", "platform-an-0004".into()),
        ("GOOGLE_API_KEY", "platform-go-0005".into()),
        ("SWITCHBOARD_ADMIN_TOKEN", ADMIN.into()),
        ("SWITCHBOARD_MASTER_KEYS", MASTER.into()),
    ]
}

impl Env {
    /// Save `api_key` as the org's OpenAI key and run its LLM slot on it (BYOK on).
    fn own_llm_key(&self, key: &str, api_key: &str) -> Value {
        let (_, cred) =
            self.req("PUT", "/api/credentials", Some(json!({"provider": "openai", "apiKey": api_key})), key);
        self.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true, "slots": {"llm": cred["id"]}})), key);
        cred
    }

    fn db_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite:{}", self.server.dir.join("sb.db").display()),
        }
    }

    /// `switchboard rates …` against this server's store, with no provider keys in the environment.
    fn rates_cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("rates").args(args).args(["--database", &self.db_url()]);
        cmd.arg("--rates").arg(root().join("assets/rates.csv"));
        for (k, _) in std::env::vars() {
            if k.ends_with("_API_KEY") {
                cmd.env_remove(k);
            }
        }
        cmd.output().expect("run switchboard rates")
    }

    /// Everything the store holds at rest, as text (to look for plaintext keys).
    fn at_rest(&self) -> String {
        match &self.pg {
            Some(pg) => pg.dump(),
            None => ["sb.db", "sb.db-wal"]
                .iter()
                .map(|f| {
                    String::from_utf8_lossy(&std::fs::read(self.server.dir.join(f)).unwrap_or_default()).to_string()
                })
                .collect(),
        }
    }

    fn req(&self, method: &str, path: &str, body: Option<Value>, key: &str) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(method, &format!("{}{path}", self.server.url), body.as_deref(), Some(key));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn org(&self, plan: &str, wallet: i64) -> (String, String) {
        let (status, v) = self.req(
            "POST",
            "/api/admin/orgs",
            Some(json!({"name": "acme", "plan": plan, "walletMicros": wallet})),
            ADMIN,
        );
        assert_eq!(status, 201, "{v}");
        (v["orgId"].as_str().unwrap().to_string(), v["apiKey"].as_str().unwrap().to_string())
    }

    /// A call to a new gpt-4o-mini agent of `key`'s org, running on its own thread once this
    /// returns (its session open for half a second): the agent's id and the call to join.
    fn call_running(&self, key: &str) -> (String, std::thread::JoinHandle<CallOut>) {
        let (_, agent) = self.agent(key, ("openai", "gpt-4o-mini"));
        let agent_id = agent["id"].as_str().unwrap().to_string();
        let (url, a) = (self.server.url.clone(), agent_id.clone());
        let first = std::thread::spawn(move || call(&url, &asset("simple.wav"), &["--agent", &a, "--token", ADMIN]));
        self.server.wait_for_session();
        std::thread::sleep(std::time::Duration::from_millis(500));
        (agent_id, first)
    }

    fn agent(&self, key: &str, llm: (&str, &str)) -> (u16, Value) {
        let spec = json!({
            "stt": {"provider": "deepgram", "model": "nova-3"},
            "llm": {"provider": llm.0, "model": llm.1},
            "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "v1"},
            "prompt": "Be brief."
        });
        self.req("POST", "/api/agents", Some(spec), key)
    }
}

fn model_access_has_three_gates_and_agents_are_refused_with_stable_codes(db: Db) {
    let env = start_on(db, &[]);
    let (_, pro) = env.org("pro", 0);
    let (_, free) = env.org("free", 0);
    let access = |key: &str, q: &str| env.req("GET", &format!("/api/models/access?{q}"), None, key).1;

    let a = access(&pro, "service=llm&provider=openai&model=gpt-9");
    assert_eq!((a["allowed"].clone(), a["reason"].clone()), (json!(false), json!("unknown_model")));
    let a = access(&free, "service=tts&provider=elevenlabs&model=eleven_turbo_v2_5");
    assert_eq!((a["reason"].clone(), a["planAllowed"].clone()), (json!("plan_restricted"), json!(false)));
    let a = access(&pro, "service=llm&model=llama-3.1-8b-instant");
    assert_eq!(a["provider"], "groq", "provider found from the model");
    assert_eq!(
        (a["reason"].clone(), a["requiresKey"].clone(), a["managed"].clone()),
        (json!("byok_key_required"), json!(true), json!(false))
    );
    let a = access(&pro, "service=llm&provider=openai&model=gpt-4o-mini");
    assert_eq!(
        (a["allowed"].clone(), a["managed"].clone(), a["hasKey"].clone()),
        (json!(true), json!(true), json!(false))
    );

    let (status, v) = env.agent(&pro, ("groq", "llama-3.1-8b-instant"));
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "PROVIDER_KEY_REQUIRED");
    assert!(v["error"]["message"].as_str().unwrap().contains("groq"), "{v}");
    let (status, v) = env.agent(&pro, ("openai", "gpt-9"));
    assert_eq!((status, v["error"]["code"].clone()), (400, json!("MODEL_NOT_ALLOWED")));
    let (status, v) = env.agent(&free, ("anthropic", "claude-sonnet-4-5"));
    assert_eq!((status, v["error"]["code"].clone()), (400, json!("MODEL_NOT_ALLOWED")), "not on the free plan");

    // With the org's own groq key and the toggle on, the same agent registers.
    let (status, _) =
        env.req("PUT", "/api/credentials", Some(json!({"provider": "groq", "apiKey": "gsk-test-abcd"})), &pro);
    assert_eq!(status, 200);
    let (status, v) = env.agent(&pro, ("groq", "llama-3.1-8b-instant"));
    assert_eq!((status, v["error"]["code"].clone()), (400, json!("PROVIDER_KEY_REQUIRED")), "toggle still off");
    let (status, _) = env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true})), &pro);
    assert_eq!(status, 200);
    let (status, v) = env.agent(&pro, ("groq", "llama-3.1-8b-instant"));
    assert_eq!(status, 201, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("agent_"));

    // Public rate list and the per-org catalog.
    let (status, body) = http_get(&format!("{}/api/rates/models", env.server.url));
    assert_eq!(status, 200);
    let rates: Value = serde_json::from_str(&body).unwrap();
    assert!(rates["managedProviders"]["llm"].as_array().unwrap().contains(&json!("openai")));
    assert!(!rates["managedProviders"]["llm"].as_array().unwrap().contains(&json!("groq")));
    let (_, cat) = env.req("GET", "/api/models/catalog", None, &pro);
    let groq =
        cat["models"].as_array().unwrap().iter().find(|m| m["model"] == "llama-3.1-8b-instant").cloned().unwrap();
    assert_eq!(groq["allowed"], true);
    assert_eq!(http_get(&format!("{}/api/models/catalog", env.server.url)).0, 401, "the catalog needs an org key");
}

fn saved_keys_are_sealed_shown_by_last4_and_invisible_to_other_orgs(db: Db) {
    let env = start_on(db, &[]);
    let (_, a) = env.org("pro", 0);
    let (_, b) = env.org("pro", 0);
    let canary = "sk-LEAKCANARY-vault-9z9z";
    let (status, v) =
        env.req("PUT", "/api/credentials", Some(json!({"provider": "openai", "apiKey": canary, "name": "main"})), &a);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["last4"], "9z9z");
    let id = v["id"].as_str().unwrap().to_string();
    let (_, v) = env.req("PUT", "/api/credentials", Some(json!({"provider": "bedrock",
        "credentials": {"accessKeyId": "AKIA-LEAKCANARY", "secretAccessKey": "LEAKCANARY-secret", "region": "us-east-1"}})), &a);
    assert_eq!(v["provider"], "bedrock");
    let (_, list) = env.req("GET", "/api/credentials", None, &a);
    assert_eq!(list["credentials"].as_array().unwrap().len(), 2);
    let (status, v) = env.req("PUT", "/api/credentials", Some(json!({"provider": "openai"})), &a);
    assert_eq!((status, v["error"]["code"].clone()), (400, json!("bad_request")));
    let (status, _) = env.req("PUT", "/api/credentials", Some(json!({"provider": "nope", "apiKey": "x"})), &a);
    assert_eq!(status, 400);

    // Org B sees nothing of A's and gets 404 for A's ids.
    let (_, list_b) = env.req("GET", "/api/credentials", None, &b);
    assert_eq!(list_b["credentials"], json!([]));
    assert_eq!(env.req("DELETE", &format!("/api/credentials/{id}"), None, &b).0, 404);
    let (status, agent) = env.agent(&a, ("openai", "gpt-4o-mini"));
    assert_eq!(status, 201);
    let agent_id = agent["id"].as_str().unwrap();
    assert_eq!(env.req("GET", &format!("/api/agents/{agent_id}"), None, &b).0, 404);
    assert_eq!(env.req("GET", &format!("/api/agents/{agent_id}"), None, &a).0, 200);
    assert_eq!(env.req("GET", "/api/credentials", None, "sk_not_a_key").0, 401);
    assert_eq!(env.req("DELETE", &format!("/api/credentials/{id}"), None, &a).0, 204);
    assert_eq!(env.req("DELETE", &format!("/api/credentials/{id}"), None, &a).0, 404);

    let at_rest = env.at_rest();
    assert!(at_rest.contains("bedrock"), "the store was read");
    for text in [at_rest, env.server.log_text()] {
        assert!(!text.contains("LEAKCANARY"), "a saved key is readable at rest or in the log");
    }
    drop(env.sim);
}

fn a_byok_call_bills_markup_and_platform_lines_spend_credits_then_wallet(db: Db) {
    let env = start_on(db, &[("openai", "sk-org-own-KEY1")]);
    let (status, _) = env.req(
        "PUT",
        "/api/admin/plans",
        Some(json!({"id": "tiny", "monthly_credit_micros": 3000, "byok_allowed": true, "allowed_models": null, "byok_markup_bps": 500})),
        ADMIN,
    );
    assert_eq!(status, 200);
    let (org_id, key) = env.org("tiny", 1_000_000);
    let cred = env.own_llm_key(&key, "sk-org-own-KEY1");
    let (status, agent) = env.agent(&key, ("openai", "gpt-4o-mini"));
    assert_eq!(status, 201, "{agent}");
    let agent_id = agent["id"].as_str().unwrap();

    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", agent_id, "--token", ADMIN]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.agent_turns(),
        vec!["We are open from nine in the morning to five in the evening, Monday to Friday."]
    );
    let usage = out.of("usage");
    for u in usage.iter().filter(|u| u["service"] == "llm") {
        assert_eq!(u["billed_to"], "byok", "{u}");
        assert_eq!(u["credential_id"], cred["id"]);
        let list = u["list_micros"].as_i64().unwrap();
        assert_eq!(
            u["amount_micros"].as_i64().unwrap(),
            (list * 500 + 9_999) / 10_000,
            "5% markup of list, rounded up: {u}"
        );
    }
    let seen = env.sim.control("/keys");
    assert!(seen["openai"].as_array().unwrap().contains(&json!("KEY1")), "the org's key served the LLM: {seen}");
    assert!(!seen["openai"].as_array().unwrap().contains(&json!("0002")), "the platform's OpenAI key was not used");

    let total: i64 = usage.iter().map(|u| u["amount_micros"].as_i64().unwrap()).sum();
    let wallet_spent: i64 =
        usage.iter().filter(|u| u["billed_to"] == "wallet").map(|u| u["amount_micros"].as_i64().unwrap()).sum();
    assert!(total > 3000, "the call costs more than the plan's credits: {total}");
    assert!(usage.iter().any(|u| u["billed_to"] == "managed"), "credits were spent first");
    assert!(wallet_spent > 0, "then the wallet");
    let (_, bal) = env.req("GET", "/api/balance", None, &key);
    assert_eq!(bal["creditsLeftMicros"], 0);
    let wallet_debited = 1_000_000 - bal["walletMicros"].as_i64().unwrap();
    // BYOK markup is paid from credits or wallet too but keeps its `byok` tag, so the wallet
    // lost at least the `wallet` lines and at most those plus the markup.
    let markup: i64 =
        usage.iter().filter(|u| u["billed_to"] == "byok").map(|u| u["amount_micros"].as_i64().unwrap()).sum();
    assert!(
        wallet_debited >= wallet_spent && wallet_debited <= wallet_spent + markup,
        "{wallet_debited} vs {wallet_spent}+{markup}"
    );
    assert_eq!(total, 3000 + wallet_debited, "credits fully used, the rest from the wallet, nothing twice");
    let (_, u) = env.req("GET", "/api/usage", None, &key);
    assert_eq!(u["totalMicros"].as_i64().unwrap(), total);
    // Another org sees none of it: 404 for the session, nothing in its own usage.
    let session = usage[0]["session_id"].as_str().unwrap();
    assert_eq!(env.req("GET", &format!("/api/usage?session={session}"), None, &key).0, 200);
    let (_, other) = env.org("pro", 0);
    assert_eq!(env.req("GET", &format!("/api/usage?session={session}"), None, &other).0, 404);
    assert_eq!(env.req("GET", "/api/usage", None, &other).1["records"], json!([]));
    assert!(u["records"].as_array().unwrap().iter().all(|r| r["org_id"] == org_id.as_str()));
}

fn a_call_that_cannot_be_funded_is_refused_before_any_provider_is_called(db: Db) {
    let env = start_on(db, &[]);
    env.req(
        "PUT",
        "/api/admin/plans",
        Some(json!({"id": "nocredit", "monthly_credit_micros": 0, "byok_allowed": true, "allowed_models": null, "byok_markup_bps": 500})),
        ADMIN,
    );
    let (org_id, key) = env.org("nocredit", 0);
    let (_, agent) = env.agent(&key, ("openai", "gpt-4o-mini"));
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    assert!(!out.ok);
    assert!(out.of("error").iter().any(|e| e["code"] == "insufficient_funds"), "{}", out.stdout);
    assert_eq!(env.sim.control("/keys")["deepgram"], json!([]), "no provider was called");

    // A top-up makes the next call go through.
    let (status, _) =
        env.req("POST", &format!("/api/admin/orgs/{org_id}/wallet"), Some(json!({"amountMicros": 500_000})), ADMIN);
    assert_eq!(status, 200);
    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    assert!(out.ok, "{}", out.stdout);
    assert!(out.of("usage").iter().filter(|u| u["service"] != "llm").all(|u| u["billed_to"] == "wallet"));
}

fn a_toggle_flip_mid_call_changes_only_the_next_call(db: Db) {
    let env = start_on(db, &[("openai", "sk-org-own-KEY2")]);
    let (_, key) = env.org("pro", 0);
    // The org's key serves the LLM slot it is assigned to.
    env.own_llm_key(&key, "sk-org-own-KEY2");
    let (agent_id, first) = env.call_running(&key);
    let (status, v) = env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": false})), &key);
    assert_eq!((status, v["useOwnKeys"].clone()), (200, json!(false)));
    let second = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    let first = first.join().unwrap();
    assert!(first.ok && second.ok, "{}\n{}", first.stdout, second.stdout);
    let llm_billing = |c: &CallOut| -> Vec<String> {
        c.of("usage")
            .iter()
            .filter(|u| u["service"] == "llm")
            .map(|u| u["billed_to"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        !llm_billing(&first).is_empty() && llm_billing(&first).iter().all(|b| b == "byok"),
        "call 1 kept BYOK\n{}",
        first.stdout
    );
    assert!(llm_billing(&second).iter().all(|b| b == "managed"), "call 2 is on the platform key");
    let seen = env.sim.control("/keys");
    let oa: Vec<&str> = seen["openai"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(oa.contains(&"KEY2") && oa.contains(&"0002"), "{seen}");
}

fn agency_sub_accounts_use_the_owner_keys_or_the_owner_wallet(db: Db) {
    let env = start_on(db, &[("openai", "sk-agency-own-KEY3")]);
    let (owner_id, owner) = env.org("pro", 2_000_000);
    env.own_llm_key(&owner, "sk-agency-own-KEY3");
    let (status, v) = env.req(
        "POST",
        "/api/admin/orgs",
        Some(json!({"name": "client co", "plan": "pro", "parentOrgId": owner_id, "walletMicros": 0})),
        ADMIN,
    );
    assert_eq!(status, 201, "{v}");
    let sub = v["apiKey"].as_str().unwrap().to_string();
    let sub_id = v["orgId"].as_str().unwrap().to_string();
    let a = env.req("GET", "/api/models/access?service=llm&provider=openai&model=gpt-4o-mini", None, &sub).1;
    assert_eq!(a["hasKey"], true, "the sub-account sees the owner's key");
    let (_, agent) = env.agent(&sub, ("openai", "gpt-4o-mini"));
    let agent_id = agent["id"].as_str().unwrap().to_string();

    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    assert!(out.ok, "{}", out.stdout);
    let usage = out.of("usage");
    let llm: Vec<&&Value> = usage.iter().filter(|u| u["service"] == "llm").collect();
    assert!(!llm.is_empty() && llm.iter().all(|u| u["billed_to"] == "byok"), "owner's key, billed byok");
    assert!(out.of("usage").iter().all(|u| u["org_id"] == sub_id.as_str()), "the sub-account pays its own lines");

    // Wallet deduction on: platform keys, and the owner's money pays.
    env.req("PUT", "/api/byok", Some(json!({"walletDeduction": true})), &owner);
    let owner_before = env.req("GET", "/api/balance", None, &owner).1;
    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    assert!(out.ok, "{}", out.stdout);
    assert!(out.of("usage").iter().all(|u| u["billed_to"] == "managed" || u["billed_to"] == "wallet"), "platform keys");
    assert!(out.of("usage").iter().all(|u| u["org_id"] == owner_id.as_str()), "charged to the owner");
    let owner_after = env.req("GET", "/api/balance", None, &owner).1;
    let spent: i64 = out.of("usage").iter().map(|u| u["amount_micros"].as_i64().unwrap()).sum();
    assert_eq!(
        owner_before["creditsLeftMicros"].as_i64().unwrap() - owner_after["creditsLeftMicros"].as_i64().unwrap(),
        spent,
        "the owner's credits paid"
    );
    let seen = env.sim.control("/keys");
    assert_eq!(seen["openai"].as_array().unwrap().last().unwrap(), "0002", "the second call used the platform key");
}

fn checking_saved_keys_makes_one_real_call_per_provider(db: Db) {
    let env = start_on(db, &[("openai", "sk-org-good-KEY4"), ("deepgram", "dg-org-good-KEY5")]);
    let (_, key) = env.org("pro", 0);
    for (p, k, name) in [
        ("openai", "sk-org-good-KEY4", "good"),
        ("openai", "sk-org-bad-NOPE", "bad"),
        ("deepgram", "dg-org-good-KEY5", "good"),
        ("elevenlabs", "el-org-bad-NOPE", "bad"),
    ] {
        let (status, _) =
            env.req("PUT", "/api/credentials", Some(json!({"provider": p, "apiKey": k, "name": name})), &key);
        assert_eq!(status, 200);
    }
    assert_eq!(env.sim.control("/keys")["openai"], json!([]), "saving never validates");
    let (status, v) = env.req("POST", "/api/credentials/check", None, &key);
    assert_eq!(status, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    let status_of = |p: &str, name: &str| {
        results
            .iter()
            .find(|r| r["provider"] == p && r["name"] == name)
            .map(|r| r["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of("openai", "good").as_deref(), Some("ok"));
    assert_eq!(status_of("openai", "bad").as_deref(), Some("error"));
    assert_eq!(status_of("deepgram", "good").as_deref(), Some("ok"));
    assert_eq!(status_of("elevenlabs", "bad").as_deref(), Some("error"));
    let text = v.to_string();
    for k in ["sk-org-good-KEY4", "sk-org-bad-NOPE", "dg-org-good-KEY5", "el-org-bad-NOPE", "org-bad", "org-good"] {
        assert!(!text.contains(k), "no key in the answer, only last 4: {text}");
    }
}

fn calls_run_through_anthropic_and_gemini_agents(db: Db) {
    let env = start_on(db, &[]);
    let (_, key) = env.org("pro", 1_000_000);
    for (provider, model) in [("anthropic", "claude-haiku-4-5"), ("google", "gemini-2.5-flash")] {
        let (status, agent) = env.agent(&key, (provider, model));
        assert_eq!(status, 201, "{agent}");
        let out =
            call(&env.server.url, &asset("simple.wav"), &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN]);
        assert!(out.ok, "{provider}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(
            out.agent_turns(),
            vec!["We are open from nine in the morning to five in the evening, Monday to Friday."]
        );
        let llm: Vec<&Value> = out.of("usage").into_iter().filter(|u| u["service"] == "llm").collect();
        assert!(!llm.is_empty());
        for u in llm {
            assert_eq!((u["provider"].as_str(), u["model"].as_str()), (Some(provider), Some(model)));
            assert_eq!(u["estimated"], false, "provider-reported tokens: {u}");
            assert_eq!(u["billed_to"], "managed");
        }
    }
    let seen = env.sim.control("/keys");
    assert_eq!(seen["anthropic"], json!(["0004"]));
    assert_eq!(seen["google"], json!(["0005"]));
}

fn a_managed_flip_applies_to_the_next_session_without_a_restart(db: Db) {
    let env = start_on(db, &[]);
    let (_, key) = env.org("pro", 1_000_000);
    let (_, agent) = env.agent(&key, ("openai", "gpt-4o-mini"));
    let agent_id = agent["id"].as_str().unwrap().to_string();

    // Managed on for a provider whose platform key the server does not hold: refused.
    let (status, v) =
        env.req("PUT", "/api/admin/rates/managed", Some(json!({"provider": "groq", "managed": true})), ADMIN);
    assert_eq!((status, v["error"]["code"].clone()), (409, json!("managed_key_missing")), "{v}");
    let out = env.rates_cli(&["set-managed", "groq", "true"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("GROQ_API_KEY"));

    // The operator takes ElevenLabs TTS off the platform key, with the CLI on the same store.
    let out = env.rates_cli(&["set-managed", "elevenlabs", "false", "tts"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&env.rates_cli(&["list", "--provider", "elevenlabs"]).stdout).to_string();
    assert!(listed.lines().any(|l| l.contains("eleven_flash_v2_5") && l.contains("false")), "{listed}");

    // The running server uses it at its next session: no restart.
    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    assert!(!out.ok);
    assert!(out.of("error").iter().any(|e| e["code"] == "byok_key_required"), "{}", out.stdout);
    let a = env.req("GET", "/api/models/access?service=tts&provider=elevenlabs&model=eleven_flash_v2_5", None, &key).1;
    assert_eq!((a["managed"].clone(), a["reason"].clone()), (json!(false), json!("byok_key_required")));
    let (_, body) = http_get(&format!("{}/api/rates/models", env.server.url));
    let rates: Value = serde_json::from_str(&body).unwrap();
    assert!(!rates["managedProviders"]["tts"].as_array().unwrap().contains(&json!("elevenlabs")));
    assert!(rates["managedProviders"]["stt"].as_array().unwrap().contains(&json!("deepgram")));

    // And back on through the admin API: the next call works.
    let (status, v) = env.req(
        "PUT",
        "/api/admin/rates/managed",
        Some(json!({"provider": "elevenlabs", "service": "tts", "managed": true})),
        ADMIN,
    );
    assert_eq!(status, 200, "{v}");
    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    assert!(out.ok, "{}", out.stdout);
}

fn running_out_of_funds_mid_call_follows_the_org_policy(db: Db) {
    let env = start_on(db, &[]);
    let plan = json!({"id": "small", "monthly_credit_micros": 1500, "byok_allowed": false, "allowed_models": null, "byok_markup_bps": 0});
    assert_eq!(env.req("PUT", "/api/admin/plans", Some(plan), ADMIN).0, 200);
    // A call is admitted only when its first minute's hold fits: 1,500 µ$ of credits do not.
    let (_, key) = env.org("small", 0);
    let (_, agent) = env.agent(&key, ("openai", "gpt-4o-mini"));
    let out =
        call(&env.server.url, &asset("simple.wav"), &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN]);
    assert!(out.stdout.contains("insufficient_funds"), "{}", out.stdout);
    assert!(out.of("usage").is_empty(), "nothing was billed");

    // end_call (no negative balance allowed): funds for a bit more than the first minute's hold
    // (a platform fee of 1 $/minute dominates it) run low after about a minute; the agent says
    // goodbye while the closing line is still covered, and hangs up.
    let plan = json!({"id": "fee", "monthly_credit_micros": 1_100_000, "byok_allowed": false, "allowed_models": null,
        "byok_markup_bps": 0, "platform_fee_micros_per_minute": 1_000_000});
    assert_eq!(env.req("PUT", "/api/admin/plans", Some(plan), ADMIN).0, 200);
    let (_, key) = env.org("fee", 0);
    let (_, agent) = env.agent(&key, ("openai", "gpt-4o-mini"));
    let out = call(
        &env.server.url,
        &asset("multi_turn.wav"),
        &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN, "--tail", "60"],
    );
    assert!(!out.ok, "the call did not end normally");
    assert_eq!(out.of("end")[0]["reason"], "insufficient_funds", "{}", out.stdout);
    let turns = out.agent_turns();
    assert!(turns.last().is_some_and(|t| t.contains("out of funds") && t.ends_with("Goodbye.")), "{turns:?}");
    let (stt_s, _) = out.usage_sum("stt");
    assert!(stt_s < duration_s("multi_turn") + 60.0 - 5.0, "hung up early: {stt_s} s of audio");
    let total: i64 = out.of("usage").iter().map(|u| u["amount_micros"].as_i64().unwrap()).sum();
    // The prepaid floor: the goodbye came early enough that the closing line was paid for from
    // what was left; the wallet never went below zero.
    let (_, bal) = env.req("GET", "/api/balance", None, &key);
    assert_eq!(bal["walletMicros"], 0, "{bal}");
    let left = bal["creditsLeftMicros"].as_i64().unwrap();
    assert_eq!(1_100_000 - left, total, "{bal}");
    assert!((0..400_000).contains(&left), "stopped near the floor, not far above it: {bal}");

    // allow_negative with room to spare: the same call runs to the end on a negative wallet.
    let (status, v) = env.req(
        "POST",
        "/api/admin/orgs",
        Some(json!({"name": "neg", "plan": "small", "negativeLimitMicros": 1_000_000})),
        ADMIN,
    );
    assert_eq!(status, 201);
    let neg = v["apiKey"].as_str().unwrap().to_string();
    let (_, agent) = env.agent(&neg, ("openai", "gpt-4o-mini"));
    let out =
        call(&env.server.url, &asset("multi_turn.wav"), &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN]);
    assert!(out.ok, "{}", out.stdout);
    assert_eq!(out.agent_turns().len(), 3);
    let (_, bal) = env.req("GET", "/api/balance", None, &neg);
    let wallet = bal["walletMicros"].as_i64().unwrap();
    assert!((-1_000_000..0).contains(&wallet), "below zero, never below the allowed limit: {bal}");
}

fn rotating_the_master_key_re_encrypts_saved_keys(db: Db) {
    let mut env = start_on(db, &[("openai", "sk-rotate-me-KEY7")]);
    let (_, key) = env.org("pro", 0);
    env.req("PUT", "/api/credentials", Some(json!({"provider": "openai", "apiKey": "sk-rotate-me-KEY7"})), &key);
    assert!(env.at_rest().contains("v1:k1:"));
    let new_key = std::process::Command::new(bin()).args(["keys", "generate-master", "--id", "k2"]).output().unwrap();
    let new_key = String::from_utf8_lossy(&new_key.stdout).trim().to_string();
    assert!(new_key.starts_with("k2:"));
    let out = std::process::Command::new(bin())
        .args(["keys", "rotate-master", "--database", &env.db_url()])
        .env("SWITCHBOARD_MASTER_KEYS", format!("{MASTER},{new_key}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 of 1 credentials re-encrypted"));
    let at_rest = env.at_rest();
    assert!(at_rest.contains("v1:k2:"), "rows moved to k2");
    // (SQLite pages may still hold the old ciphertext bytes; the rows themselves moved, which the
    // server below proves by opening the key with k2 alone.)
    if db == Db::Postgres {
        assert!(!at_rest.contains("v1:k1:"), "no row left on k1");
    }
    // A server that only knows the new key still opens the saved key.
    let url = env.db_url();
    let mut envs = server_env();
    envs.retain(|(k, _)| *k != "SWITCHBOARD_MASTER_KEYS");
    // The new key comes from a file this time.
    let key_file = env.server.dir.join("master.keys");
    std::fs::write(&key_file, &new_key).unwrap();
    envs.push(("SWITCHBOARD_MASTER_KEYS_FILE", key_file.display().to_string()));
    env.server.kill();
    let server = Server::start_with_db(ServerOpts { env: envs, args: env.sim.provider_args() }, Some(url));
    let (status, text) = http("POST", &format!("{}/api/credentials/check", server.url), None, Some(&key));
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["results"][0]["status"], "ok", "{v}");
}

fn a_plan_with_a_platform_fee_bills_it_per_minute(db: Db) {
    let env = start_on(db, &[]);
    let plan = json!({"id": "fee", "monthly_credit_micros": 10_000_000, "byok_allowed": true, "allowed_models": null,
        "byok_markup_bps": 0, "platform_fee_micros_per_minute": 12_000});
    assert_eq!(env.req("PUT", "/api/admin/plans", Some(plan), ADMIN).0, 200);
    let (_, key) = env.org("fee", 0);
    let (_, agent) = env.agent(&key, ("openai", "gpt-4o-mini"));
    let out =
        call(&env.server.url, &asset("simple.wav"), &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN]);
    assert!(out.ok, "{}", out.stdout);
    let (minutes, amount) = out.usage_sum("platform");
    let (carrier_minutes, _) = out.usage_sum("telephony");
    assert!((minutes - carrier_minutes).abs() < 1e-9, "one platform minute per call minute");
    assert!(minutes > 0.1, "{minutes}");
    assert_eq!(amount, ((minutes * 60_000.0).round() as i64 * 12_000 + 59_999) / 60_000, "$0.012 a minute, rounded up");
    assert!(out
        .of("usage")
        .iter()
        .filter(|u| u["line"] == "platform")
        .all(|u| u["service"] == "platform" && u["unit"] == "minutes"));
}

fn running_calls_hold_funds_so_concurrent_calls_cannot_overspend(db: Db) {
    let env = start_on(db, &[]);
    let plan = json!({"id": "walletonly", "monthly_credit_micros": 0, "byok_allowed": false, "allowed_models": null, "byok_markup_bps": 0});
    assert_eq!(env.req("PUT", "/api/admin/plans", Some(plan), ADMIN).0, 200);
    let (org_id, key) = env.org("walletonly", 10_000_000);
    let (agent_id, first) = env.call_running(&key);
    let (_, bal) = env.req("GET", "/api/balance", None, &key);
    let held = bal["heldMicros"].as_i64().unwrap();
    assert!(held > 10_000, "the running call holds its next minute: {bal}");
    // Leave less than one more hold in the wallet: positive, but all of it held.
    let wallet = bal["walletMicros"].as_i64().unwrap();
    let (status, _) = env.req(
        "POST",
        &format!("/api/admin/orgs/{org_id}/wallet"),
        Some(json!({"amountMicros": held - wallet})),
        ADMIN,
    );
    assert_eq!(status, 200);
    let (_, bal) = env.req("GET", "/api/balance", None, &key);
    assert!(bal["walletMicros"].as_i64().unwrap() > 0 && bal["availableMicros"].as_i64().unwrap() <= 0, "{bal}");
    let second = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    assert!(second.of("error").iter().any(|e| e["code"] == "insufficient_funds"), "{}", second.stdout);
    let first = first.join().unwrap();
    assert!(first.of("usage").len() > 3, "{}", first.stdout);
    let (_, bal) = env.req("GET", "/api/balance", None, &key);
    assert_eq!(bal["heldMicros"], 0, "the hold is released when the call ends");
}

fn a_free_model_carries_the_markup_of_its_paid_rate(db: Db) {
    let env = start_on(db, &[("openai", "sk-or-own-KEY8")]);
    // The operator lists OpenRouter's free variant of a model at $0.
    for unit in ["mega_input_tokens", "mega_output_tokens"] {
        let row = json!({"service": "llm", "provider": "openrouter", "model": "openai/gpt-4o-mini:free", "unit": unit,
            "priceMicros": 0, "managed": false});
        assert_eq!(env.req("PUT", "/api/admin/rates", Some(row), ADMIN).0, 200);
    }
    let (_, key) = env.org("pro", 0);
    env.req("PUT", "/api/credentials", Some(json!({"provider": "openrouter", "apiKey": "sk-or-own-KEY8"})), &key);
    env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true})), &key);
    let (status, agent) = env.agent(&key, ("openrouter", "openai/gpt-4o-mini:free"));
    assert_eq!(status, 201, "{agent}");
    let out =
        call(&env.server.url, &asset("simple.wav"), &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN]);
    assert!(out.ok, "{}", out.stdout);
    let input = out.of("usage").into_iter().filter(|u| u["line"] == "llm.input").cloned().collect::<Vec<Value>>();
    assert!(!input.is_empty());
    let tokens: f64 = input.iter().map(|u| u["quantity"].as_f64().unwrap()).sum();
    let amount: i64 = input.iter().map(|u| u["amount_micros"].as_i64().unwrap()).sum();
    assert!(input.iter().all(|u| u["billed_to"] == "byok" && u["list_micros"] == 0), "free at list price");
    // 5% of the paid sibling's $0.15 per million input tokens, rounded up.
    let expected = (((tokens as u64 * 150_000).div_ceil(1_000_000) * 500).div_ceil(10_000)) as i64;
    assert_eq!(amount, expected, "markup on the paid rate ({tokens} tokens)");
    assert!(amount > 0);
}

fn a_crash_loses_at_most_one_checkpoint_and_frees_the_hold(db: Db) {
    // The restart comes back under the same node id (as a systemd instance does), so it closes
    // its own leftovers at once; another node would close them when the lease runs out
    // (tests/nodes.rs).
    let node_env = || {
        let mut e = server_env();
        e.push(("SWITCHBOARD_NODE_ID", "crashy".into()));
        e
    };
    let mut env = start_as(db, &[], node_env());
    let (_, key) = env.org("pro", 0);
    let (_, agent) = env.agent(&key, ("openai", "gpt-4o-mini"));
    let url = env.server.url.clone();
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let caller =
        std::thread::spawn(move || call(&url, &asset("multi_turn.wav"), &["--agent", &agent_id, "--token", ADMIN]));
    env.server.wait_for_session();
    std::thread::sleep(std::time::Duration::from_secs(7));
    assert!(env.req("GET", "/api/balance", None, &key).1["heldMicros"].as_i64().unwrap() > 0);
    let killed_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    env.server.kill();
    let out = caller.join().unwrap();
    assert!(!out.ok);
    let restarted =
        Server::start_with_db(ServerOpts { env: node_env(), args: env.sim.provider_args() }, Some(env.db_url()));
    let (status, text) = http("GET", &format!("{}/api/calls/{}", restarted.url, out.call_sid()), None, Some(ADMIN));
    assert_eq!(status, 200, "{text}");
    let session: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((session["status"].as_str(), session["end_reason"].as_str()), (Some("closed"), Some("abandoned")));
    let usage = session["usage"].as_array().unwrap();
    let last = usage.iter().map(|u| u["created_at_ms"].as_i64().unwrap()).max().unwrap();
    assert_eq!(session["ended_at_ms"].as_i64().unwrap(), last, "closed at its last checkpoint");
    assert!(killed_at - last <= 2_700, "at most one 2 s checkpoint lost: {} ms", killed_at - last);
    let (_, bal) = {
        let (st, t) = http("GET", &format!("{}/api/balance", restarted.url), None, Some(&key));
        (st, serde_json::from_str::<Value>(&t).unwrap())
    };
    assert_eq!(bal["heldMicros"], 0, "the crashed session's hold was freed");
    let charged: i64 = usage.iter().map(|u| u["amount_micros"].as_i64().unwrap()).sum();
    assert_eq!(20_000_000 - bal["creditsLeftMicros"].as_i64().unwrap(), charged, "what was recorded was charged, once");
}

/// The seed documents' rules, through the HTTP API.
fn seed_rules_byok_plan_json_credentials_and_has_key(db: Db) {
    let env = start_on(db, &[]);
    // BYOK is a plan feature: a plan without it cannot turn the toggle on.
    let (_, free) = env.org("free", 0);
    let (status, v) = env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true})), &free);
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("byok_not_in_plan")), "{v}");
    assert_eq!(env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": false})), &free).0, 200);
    // JSON credentials: every required field, listed by the last 4 of the secret field.
    let (_, pro) = env.org("pro", 0);
    let aws = |c: Value| env.req("PUT", "/api/credentials", Some(json!({"provider": "polly", "credentials": c})), &pro);
    let (status, v) = aws(json!({"accessKeyId": "AKIDEXAMPLE"}));
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("secretAccessKey"), "{v}");
    let (status, v) =
        aws(json!({"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY"}));
    assert_eq!((status, v["last4"].as_str()), (200, Some("EKEY")), "{v}");
    // hasKey says whether a key is saved, even with the toggle off; allowed/reason say whether
    // it will be used.
    env.req("PUT", "/api/credentials", Some(json!({"provider": "groq", "apiKey": "gsk-saved-1234"})), &pro);
    let access =
        env.req("GET", "/api/models/access?service=llm&model=llama-3.1-8b-instant&provider=groq", None, &pro).1;
    assert_eq!(access["hasKey"], true, "{access}");
    assert_eq!(
        (access["allowed"].as_bool(), access["reason"].as_str()),
        (Some(false), Some("byok_key_required")),
        "{access}"
    );
    env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true})), &pro);
    let access =
        env.req("GET", "/api/models/access?service=llm&model=llama-3.1-8b-instant&provider=groq", None, &pro).1;
    assert_eq!((access["allowed"].as_bool(), access["hasKey"].as_bool()), (Some(true), Some(true)), "{access}");
}

/// A slot with a key bills `byok`; a slot left unassigned, or cleared, falls back to the platform
/// key for a managed provider.
fn an_unassigned_or_cleared_slot_runs_on_the_platform_key(db: Db) {
    let env = start_on(db, &[("openai", "sk-org-slot-KEY9")]);
    let (_, key) = env.org("pro", 2_000_000);
    let (_, cred) =
        env.req("PUT", "/api/credentials", Some(json!({"provider": "openai", "apiKey": "sk-org-slot-KEY9"})), &key);
    let (_, agent) = env.agent(&key, ("openai", "gpt-4o-mini"));
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let llm_billed = |out: &CallOut| -> Vec<String> {
        let mut v: Vec<String> = out
            .of("usage")
            .iter()
            .filter(|u| u["service"] == "llm")
            .map(|u| u["billed_to"].as_str().unwrap_or("").to_string())
            .collect();
        v.dedup();
        v
    };
    let place = || call(&env.server.url, &asset("simple.wav"), &["--agent", &agent_id, "--token", ADMIN]);
    env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true})), &key);
    let out = place();
    assert!(out.ok, "{}", out.stdout);
    assert_eq!(llm_billed(&out), vec!["managed"], "unassigned slot");
    env.req("PUT", "/api/byok", Some(json!({"slots": {"llm": cred["id"]}})), &key);
    let out = place();
    assert_eq!(llm_billed(&out), vec!["byok"], "assigned slot");
    env.req("PUT", "/api/byok", Some(json!({"slots": {"llm": null}})), &key);
    let out = place();
    assert_eq!(llm_billed(&out), vec!["managed"], "cleared slot");
}

on_both_stores!(
    seed_rules_byok_plan_json_credentials_and_has_key,
    an_unassigned_or_cleared_slot_runs_on_the_platform_key,
    model_access_has_three_gates_and_agents_are_refused_with_stable_codes,
    saved_keys_are_sealed_shown_by_last4_and_invisible_to_other_orgs,
    a_byok_call_bills_markup_and_platform_lines_spend_credits_then_wallet,
    a_call_that_cannot_be_funded_is_refused_before_any_provider_is_called,
    a_toggle_flip_mid_call_changes_only_the_next_call,
    agency_sub_accounts_use_the_owner_keys_or_the_owner_wallet,
    checking_saved_keys_makes_one_real_call_per_provider,
    calls_run_through_anthropic_and_gemini_agents,
    a_managed_flip_applies_to_the_next_session_without_a_restart,
    running_out_of_funds_mid_call_follows_the_org_policy,
    rotating_the_master_key_re_encrypts_saved_keys,
    a_plan_with_a_platform_fee_bills_it_per_minute,
    running_calls_hold_funds_so_concurrent_calls_cannot_overspend,
    a_free_model_carries_the_markup_of_its_paid_rate,
    a_crash_loses_at_most_one_checkpoint_and_frees_the_hold,
);

#[test]
fn two_servers_on_one_postgres_share_orgs_keys_agents_and_the_ledger() {
    let sim_keys = [
        ("deepgram", "platform-dg-0001"),
        ("openai", "platform-oa-0002"),
        ("elevenlabs", "platform-el-0003"),
        ("anthropic", "platform-an-0004"),
        ("google", "platform-go-0005"),
        ("openai", "sk-node-a-KEY6"),
    ];
    let sim = Sim::start(&sim_keys, &[]);
    let pg = PgDb::create();
    let node =
        || Server::start_with_db(ServerOpts { env: server_env(), args: sim.provider_args() }, Some(pg.url.clone()));
    let (a, b) = (node(), node());
    let req = |server: &Server, method: &str, path: &str, body: Option<Value>, key: &str| {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(method, &format!("{}{path}", server.url), body.as_deref(), Some(key));
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
    };
    // Everything is set up through node A…
    let (_, org) = req(&a, "POST", "/api/admin/orgs", Some(json!({"name": "n", "plan": "pro"})), ADMIN);
    let key = org["apiKey"].as_str().unwrap().to_string();
    let (_, cred) =
        req(&a, "PUT", "/api/credentials", Some(json!({"provider": "openai", "apiKey": "sk-node-a-KEY6"})), &key);
    req(&a, "PUT", "/api/byok", Some(json!({"useOwnKeys": true, "slots": {"llm": cred["id"]}})), &key);
    let spec = json!({"stt": {"provider": "deepgram", "model": "nova-3"}, "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "v"}, "prompt": "p"});
    let (status, agent) = req(&a, "POST", "/api/agents", Some(spec), &key);
    assert_eq!(status, 201);
    // …and the next call on node B uses the key saved through A, and bills the same ledger.
    let out = call(&b.url, &asset("simple.wav"), &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN]);
    assert!(out.ok, "{}", out.stdout);
    assert!(out.of("usage").iter().filter(|u| u["service"] == "llm").all(|u| u["billed_to"] == "byok"));
    assert!(sim.control("/keys")["openai"].as_array().unwrap().contains(&json!("KEY6")));
    let (_, bal) = req(&a, "GET", "/api/balance", None, &key);
    let spent: i64 = out.of("usage").iter().map(|u| u["amount_micros"].as_i64().unwrap()).sum();
    assert_eq!(20_000_000 - bal["creditsLeftMicros"].as_i64().unwrap(), spent, "node A sees what node B charged");
    let (_, usage) = req(&a, "GET", "/api/usage", None, &key);
    assert_eq!(usage["totalMicros"].as_i64().unwrap(), spent);
    // A managed flip through node A reaches node B's next session.
    let (status, _) =
        req(&a, "PUT", "/api/admin/rates/managed", Some(json!({"provider": "deepgram", "managed": false})), ADMIN);
    assert_eq!(status, 200);
    let out = call(&b.url, &asset("simple.wav"), &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN]);
    assert!(out.of("error").iter().any(|e| e["code"] == "byok_key_required"), "{}", out.stdout);
    drop((a, b));
}

/// One error format: every refusal is the documented JSON error with a stable code, bodies
/// over the limit get 413, and the admin API refuses amounts and prices out of range.
#[test]
fn every_error_is_the_json_error() {
    let env = start_on(Db::Sqlite, &[]);
    let (_, key) = env.org("pro", 0);
    let raw = |method: &str, path: &str, body: Option<&str>, bearer: Option<&str>| {
        http(method, &format!("{}{path}", env.server.url), body, bearer)
    };
    let code = |text: &str| {
        serde_json::from_str::<Value>(text).ok().and_then(|v| v["error"]["code"].as_str().map(str::to_string))
    };
    for (path, expect) in [
        ("/api/models/access?service=", (400, "bad_request")),
        ("/api/usage?to=null", (400, "bad_request")),
        ("/api/nowhere", (404, "not_found")),
    ] {
        let (status, text) = raw("GET", path, None, Some(&key));
        assert_eq!((status, code(&text).as_deref()), (expect.0, Some(expect.1)), "{path}: {text}");
    }
    let text = oversized_put(&env.server.url, "/api/credentials", &key);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(code(text.split("\r\n\r\n").nth(1).unwrap_or("")).as_deref(), Some("payload_too_large"), "{text}");
    let (status, text) = raw("DELETE", "/api/balance", None, Some(&key));
    assert_eq!((status, code(&text).as_deref()), (405, Some("method_not_allowed")), "{text}");
    // The admin API validates money.
    let (status, v) =
        env.req("POST", "/api/admin/orgs", Some(json!({"name": "x", "plan": "pro", "walletMicros": -5})), ADMIN);
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("out_of_range")), "{v}");
    let plan = json!({"id": "p", "monthly_credit_micros": 0, "byok_allowed": true, "allowed_models": null, "byok_markup_bps": 20_000});
    let (status, v) = env.req("PUT", "/api/admin/plans", Some(plan), ADMIN);
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("out_of_range")), "{v}");
    let rate = json!({"service": "llm", "provider": "openai", "model": "gpt-4o-mini", "unit": "mega_input_tokens", "priceMicros": i64::MAX, "managed": false});
    let (status, v) = env.req("PUT", "/api/admin/rates", Some(rate), ADMIN);
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("out_of_range")), "{v}");
}

/// A PUT announcing a 2 MiB body, of which only the headers are sent: the server refuses it from
/// the `Content-Length` alone, before reading a byte. (Sending the body too races the server's
/// early close with the client's write, which a client sees as a broken pipe.)
fn oversized_put(base: &str, path: &str, bearer: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {bearer}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    sock.write_all(head.as_bytes()).expect("write headers");
    let mut buf = vec![0u8; 4096];
    let mut text = String::new();
    while !text.contains("}") {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text
}
