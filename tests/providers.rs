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
use util::*;

const ADMIN: &str = "admin-test-token";
const KEY: &str = "sim-key";
const HOURS: &str = "We are open from nine in the morning to five in the evening, Monday to Friday.";

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

/// Run `simple.wav` through an agent using `provider`/`model` for `service`.
fn call_through(service: &str, provider: &str, model: Option<&str>) {
    let model = model.map(str::to_string).unwrap_or_else(|| first_model(service, provider));
    let sim = Sim::start(&[], &[]);
    let mut env: Vec<(String, String)> =
        all_provider_names().into_iter().map(|p| (format!("{}_API_KEY", p.to_uppercase()), KEY.to_string())).collect();
    env.push(("SWITCHBOARD_ADMIN_TOKEN".into(), ADMIN.into()));
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

    let mut spec = json!({
        "stt": {"provider": "deepgram", "model": "nova-3"},
        "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "21m00Tcm4TlvDq8ikWAM"},
        "prompt": "Be brief."
    });
    let voice = if service == "tts" { tts::registry::default_voice(provider).unwrap_or("") } else { "" };
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

/// One `#[test]` per provider, and the list the completeness check reads.
macro_rules! provider_calls {
    ($($name:ident: ($service:literal, $provider:literal $(, $model:literal)?)),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                call_through($service, $provider, None $(.or(Some($model)))?);
            }
        )*
        const COVERED: &[(&str, &str)] = &[$(($service, $provider)),*];
    };
}

provider_calls! {
    stt_deepgram: ("stt", "deepgram"),
    llm_openai: ("llm", "openai"),
    llm_anthropic: ("llm", "anthropic"),
    llm_google: ("llm", "google"),
    llm_groq: ("llm", "groq"),
    llm_cerebras: ("llm", "cerebras"),
    llm_deepseek: ("llm", "deepseek"),
    llm_openrouter: ("llm", "openrouter"),
    llm_xai: ("llm", "xai"),
    llm_mistral: ("llm", "mistral"),
    llm_together: ("llm", "together"),
    llm_fireworks: ("llm", "fireworks"),
    llm_novita: ("llm", "novita"),
    llm_hyperbolic: ("llm", "hyperbolic"),
    llm_sambanova: ("llm", "sambanova"),
    llm_nvidia: ("llm", "nvidia"),
    llm_chutes: ("llm", "chutes"),
    llm_akash: ("llm", "akash"),
    llm_morpheus: ("llm", "morpheus"),
    llm_vercel: ("llm", "vercel"),
    tts_elevenlabs: ("tts", "elevenlabs"),
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
