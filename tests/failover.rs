//! Failover through real processes: an agent lists fallback providers per service; when the
//! primary refuses its key at connect, or fails mid-stream, the call goes on with the fallback
//! and the usage records say which provider and credential served each part.

mod util;

use serde_json::{json, Value};
use util::*;

const ADMIN: &str = "admin-test-token";
const HOURS: &str = "We are open from nine in the morning to five in the evening, Monday to Friday.";

struct Env {
    server: Server,
    _sim: Sim,
    key: String,
}

/// A simulator process with `sim_args`, and a server whose key for `refused` providers the
/// simulators do not accept.
fn start(sim_args: &[&str], refused: &[&str]) -> Env {
    let sim = Sim::start(&[], sim_args);
    let providers = ["deepgram", "assemblyai", "openai", "anthropic", "elevenlabs", "cartesia"];
    let mut env: Vec<(&str, String)> = providers
        .iter()
        .map(|p| {
            let var: &'static str = Box::leak(format!("{}_API_KEY", p.to_uppercase()).into_boxed_str());
            (var, if refused.contains(p) { "revoked-key".to_string() } else { "sim-key".to_string() })
        })
        .collect();
    env.push(("SWITCHBOARD_ADMIN_TOKEN", ADMIN.into()));
    let server = Server::start(ServerOpts { env, args: sim.provider_args() });
    let req = |method: &str, path: &str, body: Value, key: &str| {
        let (status, text) = http(method, &format!("{}{path}", server.url), Some(&body.to_string()), Some(key));
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
    };
    let (status, v) = req("PUT", "/api/admin/rates/managed", json!({"provider": "assemblyai", "managed": true}), ADMIN);
    assert_eq!(status, 200, "{v}");
    let (status, org) =
        req("POST", "/api/admin/orgs", json!({"name": "acme", "plan": "pro", "walletMicros": 5_000_000}), ADMIN);
    assert_eq!(status, 201, "{org}");
    let key = org["apiKey"].as_str().unwrap().to_string();
    Env { server, _sim: sim, key }
}

impl Env {
    fn call(&self) -> CallOut {
        self.call_with(|_| {}, &[])
    }

    /// A call to an agent whose spec `edit` adjusts (timeouts, no fallbacks, an apology line).
    fn call_with(&self, edit: impl FnOnce(&mut Value), extra: &[&str]) -> CallOut {
        let mut spec = json!({
            "stt": {"provider": "deepgram", "model": "nova-3"},
            "llm": {"provider": "openai", "model": "gpt-4o-mini"},
            "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "21m00Tcm4TlvDq8ikWAM"},
            "prompt": "Be brief.",
            "fallbacks": {
                "stt": [{"provider": "assemblyai", "model": "universal-streaming-english"}],
                "llm": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
                "tts": [{"provider": "cartesia", "model": "sonic-3", "voice": "f786b574-daa5-4673-aa0c-cbe3e8534c02"}]
            }
        });
        edit(&mut spec);
        let (status, text) =
            http("POST", &format!("{}/api/agents", self.server.url), Some(&spec.to_string()), Some(&self.key));
        assert_eq!(status, 201, "{text}");
        let agent: Value = serde_json::from_str(&text).unwrap();
        let mut args = vec!["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN];
        args.extend_from_slice(extra);
        call(&self.server.url, &asset("simple.wav"), &args)
    }
}

fn ctx(out: &CallOut, server: &Server) -> String {
    let log = server.log_text();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    format!(
        "stdout:\n{}\nstderr:\n{}\nlog tail:\n{}",
        out.stdout,
        out.stderr,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

/// The providers (in order of first appearance) and credentials behind one service's records.
fn served_by(out: &CallOut, service: &str) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for u in out.of("usage").into_iter().filter(|u| u["service"] == service) {
        let k = (u["provider"].as_str().unwrap().to_string(), u["credential_id"].as_str().unwrap().to_string());
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    seen
}

fn assert_call_completed(out: &CallOut, env: &Env) {
    assert!(out.ok, "{}", ctx(out, &env.server));
    assert_eq!(out.texts("transcript"), vec!["Hello, what are your opening hours?"], "{}", ctx(out, &env.server));
    assert_eq!(out.agent_turns(), vec![HOURS], "{}", ctx(out, &env.server));
    let audio_ms: u64 = out.of("audio").iter().map(|a| a["ms"].as_u64().unwrap_or(0)).sum();
    assert!(audio_ms > 2000, "the caller heard the reply ({audio_ms} ms): {}", ctx(out, &env.server));
}

#[test]
fn keys_refused_at_connect_move_every_service_to_its_fallback() {
    let env = start(&[], &["deepgram", "openai", "elevenlabs"]);
    let out = env.call();
    assert_call_completed(&out, &env);
    let only = |p: &str| vec![(p.to_string(), format!("managed:{p}"))];
    assert_eq!(served_by(&out, "stt"), only("assemblyai"), "{}", ctx(&out, &env.server));
    assert_eq!(served_by(&out, "llm"), only("anthropic"));
    assert_eq!(served_by(&out, "tts"), only("cartesia"));
    let log = env.server.log_text();
    assert!(log.contains("moving to the fallback") || log.contains("moved to the fallback"), "failover logged");
    assert!(!log.contains("revoked-key") && !log.contains("sim-key"), "no key in the log");
}

#[test]
fn stt_failing_mid_stream_moves_to_the_fallback_without_dropping_the_call() {
    let env = start(&["--sim-stt-fail-after-ms", "400", "--sim-fault-only", "deepgram"], &[]);
    let out = env.call();
    assert_call_completed(&out, &env);
    let stt = served_by(&out, "stt");
    assert_eq!(
        stt,
        vec![("deepgram".into(), "managed:deepgram".into()), ("assemblyai".into(), "managed:assemblyai".into())],
        "{}",
        ctx(&out, &env.server)
    );
    // Both parts billed, together about the call's length.
    let ms: i64 =
        out.of("usage").iter().filter(|u| u["service"] == "stt").map(|u| u["quantity_atoms"].as_i64().unwrap()).sum();
    let call_ms = duration_s("simple") * 1000.0;
    assert!((ms as f64 - call_ms).abs() < call_ms * 0.1, "{ms} ms billed for a {call_ms} ms call");
}

#[test]
fn llm_dropping_mid_reply_is_finished_by_the_fallback_without_repeating_itself() {
    let env = start(&["--sim-llm-drop-after-tokens", "5", "--sim-fault-only", "openai"], &[]);
    let out = env.call();
    assert_call_completed(&out, &env);
    let llm = served_by(&out, "llm");
    assert_eq!(
        llm.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        vec!["openai", "anthropic"],
        "{}",
        ctx(&out, &env.server)
    );
    let openai: Vec<&Value> = out.of("usage").into_iter().filter(|u| u["provider"] == "openai").collect();
    assert!(openai.iter().all(|u| u["estimated"] == true), "the cut stream's tokens are estimated: {openai:?}");
}

#[test]
fn tts_failing_mid_reply_is_finished_by_the_fallback() {
    let env = start(&["--sim-tts-fail-after-chars", "20", "--sim-fault-only", "elevenlabs"], &[]);
    let out = env.call();
    assert_call_completed(&out, &env);
    let tts = served_by(&out, "tts");
    assert_eq!(
        tts.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        vec!["elevenlabs", "cartesia"],
        "{}",
        ctx(&out, &env.server)
    );
    let chars = |p: &str| -> i64 {
        out.of("usage").iter().filter(|u| u["provider"] == p).map(|u| u["quantity_atoms"].as_i64().unwrap()).sum()
    };
    let total = HOURS.chars().count() as i64;
    assert!(
        chars("cartesia") > 0 && chars("cartesia") < total,
        "only the unvoiced rest is resent: {}",
        chars("cartesia")
    );
}

/// Short step limits, so a provider that never answers is given up on quickly.
fn quick(spec: &mut Value) {
    spec["timeouts"] =
        json!({"llmFirstTokenMs": 1500, "ttsConnectMs": 1500, "ttsFirstAudioMs": 1500, "sttConnectMs": 1500});
}

fn no_fallbacks(spec: &mut Value) {
    quick(spec);
    spec.as_object_mut().unwrap().remove("fallbacks");
}

#[test]
fn an_llm_that_never_answers_fails_over_within_the_turn() {
    let env = start(&["--sim-stall", "llm.openai"], &[]);
    let out = env.call_with(quick, &["--tail", "5"]);
    assert_call_completed(&out, &env);
    assert!(out.stdout.contains("llm_timeout"), "the failover says why: {}", ctx(&out, &env.server));
    let llm = served_by(&out, "llm");
    assert_eq!(llm.last().map(|(p, _)| p.as_str()), Some("anthropic"), "{}", ctx(&out, &env.server));
}

#[test]
fn with_no_fallback_left_the_caller_hears_the_apology_not_silence() {
    let env = start(&["--sim-stall", "llm.openai"], &[]);
    let apology = "Sorry, give me a moment, I could not get that.";
    let out = env.call_with(
        |spec| {
            no_fallbacks(spec);
            spec["apologyLine"] = json!(apology);
        },
        &["--tail", "5"],
    );
    assert_eq!(out.agent_turns(), vec![apology], "{}", ctx(&out, &env.server));
    let audio_ms: u64 = out.of("audio").iter().map(|a| a["ms"].as_u64().unwrap_or(0)).sum();
    assert!(audio_ms > 1000, "the apology was heard ({audio_ms} ms)");
    assert_eq!(out.of("end")[0]["reason"], "hangup", "the call went on: {}", ctx(&out, &env.server));
}

#[test]
fn a_tts_handshake_that_never_completes_fails_over() {
    let env = start(&["--sim-stall", "tts.elevenlabs"], &[]);
    let out = env.call_with(quick, &["--tail", "5"]);
    assert_call_completed(&out, &env);
    assert_eq!(served_by(&out, "tts").last().map(|(p, _)| p.as_str()), Some("cartesia"), "{}", ctx(&out, &env.server));
}

#[test]
fn with_tts_gone_the_call_ends_with_its_own_reason() {
    let env = start(&["--sim-stall", "tts.elevenlabs"], &[]);
    let out = env.call_with(no_fallbacks, &["--tail", "5"]);
    assert_eq!(out.of("end")[0]["reason"], "tts_timeout", "{}", ctx(&out, &env.server));
}

#[test]
fn an_stt_that_never_accepts_fails_over_at_connect() {
    let env = start(&["--sim-stall", "stt.deepgram"], &[]);
    let out = env.call_with(quick, &["--tail", "5"]);
    assert_call_completed(&out, &env);
    assert_eq!(served_by(&out, "stt").last().map(|(p, _)| p.as_str()), Some("assemblyai"));
}
