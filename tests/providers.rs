//! One recorded call through every registered provider: for each (service, provider), an agent
//! that uses it for that service (and the default providers for the other two) takes
//! `simple.wav` end to end through a real `switchboard serve` pointed at `switchboard sim`, and
//! the test checks the transcript, the agent's reply and audio, and the usage records of that
//! service (provider, model, billed to the platform key, a positive quantity).
//!
//! `every_registered_provider_has_a_call_test` fails when a provider is registered without a
//! line here, so a new provider cannot land untested.

mod util;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use util::recorded::*;
use util::*;

const ADMIN: &str = "admin-test-token";
const MASTER: &str = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY: &str = "sim-key";
/// AWS providers take `ACCESS_KEY_ID:SECRET_ACCESS_KEY` and their simulators verify SigV4.
const AWS_KEY: &str = "AKIDSIMULATOR0001:sim-secret-access-key";
const AWS: [&str; 3] = ["transcribe", "polly", "bedrock"];

fn key_for(provider: &str) -> &'static str {
    if AWS.contains(&provider) {
        AWS_KEY
    } else {
        KEY
    }
}

/// The first model the rate table prices for `service`/`provider`.
fn first_model(service: &str, provider: &str) -> String {
    let csv = std::fs::read_to_string(root().join("assets/rates.csv")).expect("rates.csv");
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == service && f[1] == provider)
        .map(|f| f[2].to_string())
        .unwrap_or_else(|| panic!("no {service} model for {provider} in assets/rates.csv"))
}

fn all_provider_names() -> BTreeSet<&'static str> {
    stt::registry::names().chain(tts::registry::names()).chain(llm::registry::names()).collect()
}

fn normalized(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric() || *c == ' ').collect::<String>().to_lowercase()
}

/// Run `simple.wav` through an agent using `provider`/`model`/`voice` for `service`.
fn call_through(service: &str, provider: &str, model: Option<&str>, voice: Option<&str>) {
    let model = model.map(str::to_string).unwrap_or_else(|| first_model(service, provider));
    let aws_keys: Vec<(&str, &str)> = AWS.iter().map(|p| (*p, AWS_KEY)).collect();
    let sim = Sim::start(&aws_keys, &[]);
    let mut env: Vec<(String, String)> = all_provider_names()
        .into_iter()
        .map(|p| (format!("{}_API_KEY", p.to_uppercase()), key_for(p).to_string()))
        .collect();
    env.push(("SWITCHBOARD_ADMIN_TOKEN".into(), ADMIN.into()));
    env.push(("SWITCHBOARD_MASTER_KEYS".into(), MASTER.into()));
    let env_refs: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let server = Server::start(ServerOpts { env: env_refs, args: sim.provider_args() });
    let req = |method: &str, path: &str, body: Value, key: &str| {
        let (status, text) = http(method, &format!("{}{path}", server.url), Some(&body.to_string()), Some(key));
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
    };

    // This test is about the protocol, not BYOK: serve every provider on the platform's key.
    let (status, v) = req("PUT", "/api/admin/rates/managed", json!({"provider": provider, "managed": true}), ADMIN);
    assert_eq!(status, 200, "managed flip for {provider}: {v}");
    let (status, org) =
        req("POST", "/api/admin/orgs", json!({"name": "acme", "plan": "pro", "walletMicros": 5_000_000}), ADMIN);
    assert_eq!(status, 201, "{org}");
    let api_key = org["apiKey"].as_str().expect("api key").to_string();

    // Key validation through the API: the provider's check call accepts the simulator's key and
    // is refused for a wrong one, the way the provider refuses it.
    let bad = if AWS.contains(&provider) { "AKIDWRONG0000:wrong-secret" } else { "wrong-key-0000" };
    for (name, key) in [("good", key_for(provider)), ("bad", bad)] {
        let (status, v) =
            req("PUT", "/api/credentials", json!({"provider": provider, "apiKey": key, "name": name}), &api_key);
        assert_eq!(status, 200, "{v}");
    }
    let (status, checked) = req("POST", "/api/credentials/check", json!({}), &api_key);
    assert_eq!(status, 200, "{checked}");
    let result = |name: &str| {
        checked["results"].as_array().into_iter().flatten().find(|r| r["name"] == name).cloned().unwrap_or_default()
    };
    assert_eq!(result("good")["status"], "ok", "{provider}: {checked}");
    assert_eq!(result("bad")["status"], "error", "{provider}: {checked}");
    assert!(!checked.to_string().contains(bad), "no key in the answer");
    for id in checked["results"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str()) {
        let (status, _) = http("DELETE", &format!("{}/api/credentials/{id}", server.url), None, Some(&api_key));
        assert!(status == 200 || status == 204, "deleting the test credential");
    }

    let mut spec = json!({
        "stt": {"provider": "deepgram", "model": "nova-3"},
        "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "21m00Tcm4TlvDq8ikWAM"},
        "prompt": "Be brief."
    });
    let voice = match (service, voice) {
        (_, Some(v)) => v,
        ("tts", None) => tts::registry::default_voice(provider).unwrap_or(""),
        _ => "",
    };
    spec[service] = json!({"provider": provider, "model": model, "voice": voice});
    let (status, agent) = req("POST", "/api/agents", spec, &api_key);
    assert_eq!(status, 201, "agent with {service} {provider}/{model}: {agent}");
    let agent_id = agent["id"].as_str().expect("agent id");

    let out = call(&server.url, &asset("simple.wav"), &["--agent", agent_id, "--token", ADMIN]);
    let context = || format!("{service} {provider}/{model}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.ok, "call failed: {}\nserver log tail:\n{}", context(), tail(&server.log_text()));
    assert_eq!(
        out.texts("transcript").iter().map(|t| normalized(t)).collect::<Vec<_>>(),
        vec![normalized("Hello, what are your opening hours?")],
        "{}",
        context()
    );
    assert_eq!(out.agent_turns(), vec![HOURS], "{}", context());
    let audio_ms: u64 = out.of("audio").iter().map(|a| a["ms"].as_u64().unwrap_or(0)).sum();
    assert!(audio_ms > 2000, "agent audio reached the caller ({audio_ms} ms): {}", context());

    let records: Vec<&Value> = out.of("usage").into_iter().filter(|u| u["service"] == service).collect();
    assert!(!records.is_empty(), "no {service} usage: {}", context());
    for u in &records {
        assert_eq!((u["provider"].as_str(), u["model"].as_str()), (Some(provider), Some(model.as_str())), "{u}");
        assert_eq!(u["billed_to"], "managed", "{u}");
    }
    let quantity: f64 = records.iter().map(|u| u["quantity"].as_f64().unwrap_or(0.0)).sum();
    assert!(quantity > 0.0, "{service} quantity: {}", context());
    if service == "tts" {
        let chars: i64 = records.iter().map(|u| u["quantity_atoms"].as_i64().unwrap_or(0)).sum();
        assert_eq!(chars, HOURS.chars().count() as i64, "characters billed = characters spoken: {}", context());
    }
    if service == "stt" {
        let ms: i64 = records.iter().map(|u| u["quantity_atoms"].as_i64().unwrap_or(0)).sum();
        let call_ms = duration_s("simple") * 1000.0;
        assert!(
            (ms as f64 - call_ms).abs() < call_ms * 0.1,
            "billed audio {ms} ms ≈ the call's {call_ms} ms: {}",
            context()
        );
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// One `#[test]` per provider (and per protocol variant), and the list the completeness check reads.
macro_rules! provider_calls {
    ($($name:ident: ($service:literal, $provider:literal, $model:expr, $voice:expr)),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                call_through($service, $provider, $model, $voice);
            }
        )*
        const COVERED: &[(&str, &str)] = &[$(($service, $provider)),*];
    };
}

provider_calls! {
    stt_deepgram: ("stt", "deepgram", None, None),
    stt_deepgram_flux: ("stt", "deepgram", Some("flux-general-en"), None),
    stt_assemblyai: ("stt", "assemblyai", Some("universal-streaming-english"), None),
    stt_azure: ("stt", "azure", None, None),
    stt_cartesia: ("stt", "cartesia", None, None),
    stt_elevenlabs: ("stt", "elevenlabs", None, None),
    stt_gladia: ("stt", "gladia", None, None),
    stt_soniox: ("stt", "soniox", None, None),
    stt_transcribe: ("stt", "transcribe", None, None),
    llm_openai: ("llm", "openai", None, None),
    llm_openai_responses: ("llm", "openai", Some("responses:gpt-4.1-mini"), None),
    llm_anthropic: ("llm", "anthropic", None, None),
    llm_google: ("llm", "google", None, None),
    llm_azure: ("llm", "azure", None, None),
    llm_azure_responses: ("llm", "azure", Some("responses:gpt-4o-mini"), None),
    llm_bedrock: ("llm", "bedrock", None, None),
    llm_groq: ("llm", "groq", None, None),
    llm_cerebras: ("llm", "cerebras", None, None),
    llm_deepseek: ("llm", "deepseek", None, None),
    llm_openrouter: ("llm", "openrouter", None, None),
    llm_xai: ("llm", "xai", None, None),
    llm_mistral: ("llm", "mistral", None, None),
    llm_together: ("llm", "together", None, None),
    llm_fireworks: ("llm", "fireworks", None, None),
    llm_novita: ("llm", "novita", None, None),
    llm_hyperbolic: ("llm", "hyperbolic", None, None),
    llm_sambanova: ("llm", "sambanova", None, None),
    llm_nvidia: ("llm", "nvidia", None, None),
    llm_chutes: ("llm", "chutes", None, None),
    llm_akash: ("llm", "akash", None, None),
    llm_morpheus: ("llm", "morpheus", None, None),
    llm_vercel: ("llm", "vercel", None, None),
    tts_elevenlabs: ("tts", "elevenlabs", None, None),
    tts_elevenlabs_multi_context: ("tts", "elevenlabs", None, Some("multi:21m00Tcm4TlvDq8ikWAM")),
    tts_azure: ("tts", "azure", None, None),
    tts_cartesia: ("tts", "cartesia", None, None),
    tts_deepgram: ("tts", "deepgram", None, None),
    tts_deepgram_flux: ("tts", "deepgram", Some("flux"), Some("alexis-en")),
    tts_polly: ("tts", "polly", None, None),
    tts_rime: ("tts", "rime", None, None),
    tts_soniox: ("tts", "soniox", None, None),
    tts_xai: ("tts", "xai", None, None),
}
#[test]
fn every_registered_provider_has_a_call_test() {
    let registered = stt::registry::names()
        .map(|p| ("stt", p))
        .chain(llm::registry::names().map(|p| ("llm", p)))
        .chain(tts::registry::names().map(|p| ("tts", p)));
    let missing: Vec<String> = registered.filter(|k| !COVERED.contains(k)).map(|(s, p)| format!("{s}.{p}")).collect();
    assert!(missing.is_empty(), "registered without a call test in tests/providers.rs: {missing:?}");
}
