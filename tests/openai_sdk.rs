//! `POST /api/v1/chat/completions` through the official OpenAI Python and Node SDKs (pinned in
//! tests/sdk; `.ci/run` installs them), against a real server and `switchboard sim`: managed
//! and BYOK routing, `x-byok-provider`, typed SDK errors, and the usage records each request
//! leaves (provider-reported tokens, BYOK markup, an estimate when the client hangs up).

mod util;

use serde_json::{json, Value};
use std::process::Command;
use util::recorded::*;
use util::*;

const ADMIN: &str = "admin-test-token";
const MASTER: &str = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

struct Env {
    server: Server,
    _sim: Sim,
}

fn start() -> Env {
    let sim = Sim::start(&[("openai", "platform-oa-0002"), ("openai", "gsk-org-own-9876")], &[]);
    let env = vec![
        ("OPENAI_API_KEY", "platform-oa-0002".to_string()),
        ("SWITCHBOARD_ADMIN_TOKEN", ADMIN.to_string()),
        ("SWITCHBOARD_MASTER_KEYS", MASTER.to_string()),
    ];
    let server = Server::start(ServerOpts { env, args: sim.provider_args() });
    Env { server, _sim: sim }
}

impl Env {
    fn req(&self, method: &str, path: &str, body: Option<Value>, key: &str) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(method, &format!("{}{path}", self.server.url), body.as_deref(), Some(key));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn org(&self, plan: &str) -> String {
        let (status, v) =
            self.req("POST", "/api/admin/orgs", Some(json!({"name": "acme", "plan": plan, "walletMicros": 0})), ADMIN);
        assert_eq!(status, 201, "{v}");
        v["apiKey"].as_str().unwrap().to_string()
    }

    fn llm_usage(&self, key: &str) -> Vec<Value> {
        let (status, v) = self.req("GET", "/api/usage", None, key);
        assert_eq!(status, 200, "{v}");
        v["records"].as_array().cloned().unwrap_or_default().into_iter().filter(|r| r["service"] == "llm").collect()
    }
}

/// Run one SDK script; `Err` with instructions when the SDK is not installed (never a skip).
fn sdk(program: &str, script: &str, env: &Env, key: &str, model: &str, provider: Option<&str>) -> Value {
    let dir = root().join("tests/sdk");
    let mut cmd = Command::new(program);
    cmd.arg(dir.join(script))
        .current_dir(&dir)
        .env("SB_BASE_URL", format!("{}/api/v1", env.server.url))
        .env("SB_API_KEY", key)
        .env("SB_MODEL", model)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    if let Some(p) = provider {
        cmd.env("SB_PROVIDER", p);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{program} is required for the SDK tests: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} {script} failed (install the SDKs: pip install -r tests/sdk/requirements.txt; cd tests/sdk && npm ci):\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{script} printed no JSON: {stdout}\n{stderr}"))
}

fn both_sdks(env: &Env, key: &str, model: &str, provider: Option<&str>) -> Vec<Value> {
    vec![sdk("python3", "chat.py", env, key, model, provider), sdk("node", "chat.mjs", env, key, model, provider)]
}

#[test]
fn official_sdks_stream_and_complete_on_the_platform_key_and_are_billed_like_a_call() {
    let env = start();
    let key = env.org("pro");
    for out in both_sdks(&env, &key, "gpt-4o-mini", None) {
        assert!(out.get("error").is_none(), "{out}");
        assert_eq!(out["text"], HOURS, "{out}");
        assert_eq!(out["stream_text"], HOURS, "{out}");
        assert_eq!(out["finish_reason"], "stop");
        assert_eq!(out["billed_to"], "managed");
        assert_eq!(out["usage"], out["stream_usage"], "the stream's usage chunk matches: {out}");
        assert!(out["usage"]["prompt"].as_u64().unwrap() > 0 && out["usage"]["completion"].as_u64().unwrap() > 0);
    }
    // Three requests per SDK, each billed once per line with the provider's own counts.
    let records = env.llm_usage(&key);
    let inputs: Vec<&Value> = records.iter().filter(|r| r["line"] == "llm.input").collect();
    assert_eq!(inputs.len(), 6, "{records:?}");
    for r in &records {
        assert_eq!((r["provider"].as_str(), r["billed_to"].as_str()), (Some("openai"), Some("managed")), "{r}");
        assert_eq!(r["estimated"], false, "{r}");
        assert!(r["amount_micros"].as_i64().unwrap() > 0, "managed usage costs list price: {r}");
        assert!(r["session_id"].as_str().unwrap().starts_with("chatcmpl-"));
    }
}

/// Tools through both SDKs on an OpenAI, an Anthropic and a Gemini model: each provider gets
/// the tools in its own protocol and its calls come back in OpenAI's shape, whole and streamed;
/// the result sent back is voiced; a forced `tool_choice` is honoured.
#[test]
fn official_sdks_call_tools_on_openai_anthropic_and_gemini_models() {
    let platform = [
        ("openai", "OPENAI_API_KEY", "platform-oa-0002"),
        ("anthropic", "ANTHROPIC_API_KEY", "platform-an-0004"),
        ("google", "GOOGLE_API_KEY", "platform-gg-0005"),
    ];
    let sim_keys: Vec<(&str, &str)> = platform.iter().map(|(p, _, k)| (*p, *k)).collect();
    let sim = Sim::start(&sim_keys, &[]);
    let mut vars: Vec<(&str, String)> = platform.iter().map(|(_, v, k)| (*v, k.to_string())).collect();
    vars.push(("SWITCHBOARD_ADMIN_TOKEN", ADMIN.to_string()));
    vars.push(("SWITCHBOARD_MASTER_KEYS", MASTER.to_string()));
    let env = Env { server: Server::start(ServerOpts { env: vars, args: sim.provider_args() }), _sim: sim };
    let key = env.org("pro");
    for (model, provider) in
        [("gpt-4o-mini", "openai"), ("claude-haiku-4-5", "anthropic"), ("gemini-2.5-flash", "google")]
    {
        for out in
            [sdk("python3", "tools.py", &env, &key, model, None), sdk("node", "tools.mjs", &env, &key, model, None)]
        {
            assert!(out.get("error").is_none(), "{model}: {out}");
            let call = json!([{"name": "order_status", "arguments": {"order_id": "4217"}}]);
            assert_eq!(out["calls"].as_array().map(Vec::len), Some(1), "{model}: {out}");
            assert_eq!(out["calls"][0]["name"], "order_status", "{model}: {out}");
            assert_eq!(out["calls"][0]["arguments"], call[0]["arguments"], "{model}: {out}");
            assert_eq!(out["finish_reason"], "tool_calls", "{model}: {out}");
            assert_eq!(out["answer"], "I checked: status shipped.", "{model}: {out}");
            assert_eq!(out["stream_calls"], call, "{model}: {out}");
            assert_eq!(out["stream_finish"], "tool_calls", "{model}: {out}");
            assert_eq!(out["forced"], json!(["order_status"]), "{model}: {out}");
        }
        let records = env.llm_usage(&key);
        assert!(records.iter().any(|r| r["provider"] == provider), "{model} was billed to {provider}: {records:?}");
    }
}

#[test]
fn byok_only_providers_use_the_orgs_key_with_markup_and_never_fall_back() {
    let env = start();
    let key = env.org("pro");
    // Groq is BYOK-only: without the org's key the SDKs get a typed 403, not the platform key.
    for out in both_sdks(&env, &key, "llama-3.1-8b-instant", None) {
        assert_eq!(out["error"]["status"], 403, "{out}");
        assert_eq!(out["error"]["code"], "byok_key_required", "{out}");
        assert_eq!(out["error"]["class"], "PermissionDeniedError", "{out}");
    }
    assert!(env.llm_usage(&key).is_empty());

    let (status, v) =
        env.req("PUT", "/api/credentials", Some(json!({"provider": "groq", "apiKey": "gsk-org-own-9876"})), &key);
    assert_eq!(status, 200, "{v}");
    let (status, v) = env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true})), &key);
    assert_eq!(status, 200, "{v}");
    let out = sdk("python3", "chat.py", &env, &key, "llama-3.1-8b-instant", None);
    assert_eq!(out["text"], HOURS, "{out}");
    assert_eq!(out["billed_to"], "byok");
    let records = env.llm_usage(&key);
    assert!(!records.is_empty());
    for r in &records {
        assert_eq!((r["provider"].as_str(), r["billed_to"].as_str()), (Some("groq"), Some("byok")), "{r}");
        let (list, amount) = (r["list_micros"].as_i64().unwrap(), r["amount_micros"].as_i64().unwrap());
        assert_eq!(amount, (list * 500 + 9_999) / 10_000, "BYOK pays only the 5% markup, rounded up: {r}");
        assert!(r["credential_id"].as_str().unwrap().starts_with("conn_"), "{r}");
    }
}

#[test]
fn a_shared_model_name_needs_x_byok_provider_and_errors_are_typed() {
    let env = start();
    let key = env.org("pro");
    // `gpt-4o-mini` is also Azure's deployment name in the rate table when Azure is registered;
    // a model several providers serve is ambiguous without the header.
    let out = sdk("node", "chat.mjs", &env, &key, "openai/gpt-4o-mini", None);
    assert_eq!(
        (out["error"]["status"].as_u64(), out["error"]["code"].as_str()),
        (Some(404), Some("model_not_found")),
        "{out}"
    );
    let (status, v) =
        env.req("PUT", "/api/credentials", Some(json!({"provider": "openrouter", "apiKey": "gsk-org-own-9876"})), &key);
    assert_eq!(status, 200, "{v}");
    env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true})), &key);
    let out = sdk("node", "chat.mjs", &env, &key, "openai/gpt-4o-mini", Some("openrouter"));
    assert_eq!(out["text"], HOURS, "{out}");
    assert_eq!(out["billed_to"], "byok");

    let out = sdk("python3", "chat.py", &env, "sk_not-a-real-key", "gpt-4o-mini", None);
    assert_eq!(out["error"]["class"], "AuthenticationError", "{out}");
    let out = sdk("python3", "chat.py", &env, &key, "no-such-model", None);
    assert_eq!(
        (out["error"]["status"].as_u64(), out["error"]["class"].as_str()),
        (Some(404), Some("NotFoundError")),
        "{out}"
    );
    let (status, v) = env.req("POST", "/api/v1/chat/completions", Some(json!({"model": "gpt-4o-mini"})), &key);
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("missing_messages")), "{v}");
    let (status, _) =
        http("POST", &format!("{}/api/v1/chat/completions", env.server.url), Some("{not json"), Some(&key));
    assert_eq!(status, 400);
}

#[test]
fn a_client_hanging_up_mid_stream_is_billed_an_estimate() {
    let env = start();
    let key = env.org("pro");
    let url = format!("{}/api/v1/chat/completions", env.server.url);
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "Tell me a story"}]});
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new().post(&url).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut resp = resp;
        let mut seen = 0;
        while let Some(chunk) = resp.chunk().await.unwrap() {
            seen += chunk.len();
            if String::from_utf8_lossy(&chunk).contains("upon") {
                break;
            }
        }
        assert!(seen > 0);
        drop(resp);
    });
    // The connection lives in this runtime: dropping it closes the socket, as a process exit would.
    drop(rt);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let records = loop {
        let r = env.llm_usage(&key);
        if r.iter().any(|r| r["line"] == "llm.output") || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let out: Vec<&Value> = records.iter().filter(|r| r["line"] == "llm.output").collect();
    assert_eq!(out.len(), 1, "{records:?}");
    assert_eq!(out[0]["estimated"], true, "the provider's count never came: {}", out[0]);
    let story_words = llm_sim::reply_for("story").split_whitespace().count() as i64;
    let billed = out[0]["quantity_atoms"].as_i64().unwrap();
    assert!(billed > 0 && billed < story_words * 2, "billed what was generated before the hang-up: {billed}");
}

/// A non-streaming request whose client hangs up is cancelled upstream at once and billed by
/// the estimate rule: the provider's first token would take 60 s, the client gives up after
/// 1 s, and the request's session is closed (`client_disconnected`) within about a second.
#[test]
fn a_client_that_hangs_up_cancels_the_request_upstream() {
    let sim = Sim::start(&[("openai", "platform-oa-0002")], &["--sim-llm-first-token-ms", "60000"]);
    let env = vec![
        ("OPENAI_API_KEY", "platform-oa-0002".to_string()),
        ("SWITCHBOARD_ADMIN_TOKEN", ADMIN.to_string()),
        ("SWITCHBOARD_MASTER_KEYS", MASTER.to_string()),
    ];
    let env = Env { server: Server::start(ServerOpts { env, args: sim.provider_args() }), _sim: sim };
    let key = env.org("pro");
    let url = format!("{}/api/v1/chat/completions", env.server.url);
    let k = key.clone();
    let gave_up = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What are your opening hours?"}]});
            let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(1)).build().unwrap();
            client.post(&url).bearer_auth(k).json(&body).send().await.is_err()
        })
    });
    assert!(gave_up.join().unwrap(), "the client timed out");
    let hung_up = std::time::Instant::now();
    let session = loop {
        let (_, v) = env.req("GET", "/api/calls?limit=1", None, &key);
        let s = v["calls"][0].clone();
        if s["status"] == "closed" {
            break s;
        }
        assert!(hung_up.elapsed() < std::time::Duration::from_secs(5), "still running: {v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(session["end_reason"], "client_disconnected", "{session}");
    assert!(hung_up.elapsed() < std::time::Duration::from_secs(3), "cancelled in {:?}", hung_up.elapsed());
    let usage = env.llm_usage(&key);
    assert!(usage.iter().any(|r| r["line"] == "llm.input" && r["estimated"] == true), "{usage:?}");
}

fn list_models(program: &str, script: &str, env: &Env, key: &str) -> Value {
    let dir = root().join("tests/sdk");
    let out = Command::new(program)
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("SB_BASE_URL", format!("{}/api/v1", env.server.url))
        .env("SB_API_KEY", key)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap_or_else(|e| panic!("{program} is required for the SDK tests: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{script} printed no JSON: {stdout}"))
}

/// `GET /api/v1/models` through both SDKs: the models the org can use, with their provider; a
/// BYOK-only provider's models appear once the org has its key.
#[test]
fn the_sdks_list_the_models_the_org_can_use() {
    let env = start();
    let key = env.org("pro");
    let has = |out: &Value, id: &str, owner: &str| {
        out["models"].as_array().unwrap().iter().any(|m| m["id"] == id && m["owned_by"] == owner)
    };
    for (program, script) in [("python3", "models.py"), ("node", "models.mjs")] {
        let out = list_models(program, script, &env, &key);
        assert!(has(&out, "gpt-4o-mini", "openai"), "{out}");
        assert!(!has(&out, "llama-3.1-8b-instant", "groq"), "BYOK-only without a key: {out}");
    }
    env.req("PUT", "/api/credentials", Some(json!({"provider": "groq", "apiKey": "gsk-org-own-9876"})), &key);
    env.req("PUT", "/api/byok", Some(json!({"useOwnKeys": true})), &key);
    for (program, script) in [("python3", "models.py"), ("node", "models.mjs")] {
        let out = list_models(program, script, &env, &key);
        assert!(has(&out, "llama-3.1-8b-instant", "groq"), "{out}");
    }
    let out = list_models("python3", "models.py", &env, "sk_not-a-real-key");
    assert_eq!(out["error"]["status"], 401, "{out}");
}
