//! Failover through real processes: an agent lists fallback providers per service; when the
//! primary refuses its key at connect, or fails mid-stream, the call goes on with the fallback
//! and the usage records say which provider and credential served each part.

mod util;

use serde_json::{json, Value};
use util::recorded::*;
use util::*;

const ADMIN: &str = "admin-test-token";

struct Env {
    server: Server,
    _sim: Sim,
    key: String,
}

/// A simulator process with `sim_args`, and a server whose key for `refused` providers the
/// simulators do not accept.
fn start(sim_args: &[&str], refused: &[&str]) -> Env {
    let sim = Sim::start(&[], sim_args);
    let server = Server::start(ServerOpts { env: failover_env(refused, ADMIN), args: sim.provider_args() });
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
        let mut spec = agent_spec_with_fallbacks();
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
/// A call with the simulator `stalled` (`service.provider`) accepting and never answering,
/// on the agent's quick timeouts: it completes, and `fallback` served that service last.
fn stalled_then_served_by(stalled: &str, fallback: &str) -> (Env, CallOut) {
    let env = start(&["--sim-stall", stalled], &[]);
    let out = env.call_with(quick, &["--tail", "5"]);
    assert_call_completed(&out, &env);
    let service = stalled.split('.').next().unwrap_or_default();
    let last = served_by(&out, service).last().map(|(p, _)| p.clone());
    assert_eq!(last.as_deref(), Some(fallback), "{}", ctx(&out, &env.server));
    (env, out)
}

/// A call with the simulators faulting as `sim_args` say: it completes, and `served` names the
/// service and the providers that served it, in order (`"llm openai anthropic"`).
fn faulted_then_served_by(sim_args: &str, served: &str) -> (Env, CallOut) {
    let env = start(&sim_args.split_whitespace().collect::<Vec<_>>(), &[]);
    let out = env.call();
    assert_call_completed(&out, &env);
    let (service, expected) = served.split_once(' ').unwrap_or((served, ""));
    let expected: Vec<&str> = expected.split_whitespace().collect();
    let served = served_by(&out, service);
    let providers: Vec<&str> = served.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(providers, expected, "{}", ctx(&out, &env.server));
    (env, out)
}

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
    let (_env, out) =
        faulted_then_served_by("--sim-llm-drop-after-tokens 5 --sim-fault-only openai", "llm openai anthropic");
    let openai: Vec<&Value> = out.of("usage").into_iter().filter(|u| u["provider"] == "openai").collect();
    assert!(openai.iter().all(|u| u["estimated"] == true), "the cut stream's tokens are estimated: {openai:?}");
}

#[test]
fn tts_failing_mid_reply_is_finished_by_the_fallback() {
    let (_env, out) =
        faulted_then_served_by("--sim-tts-fail-after-chars 20 --sim-fault-only elevenlabs", "tts elevenlabs cartesia");
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
    let (env, out) = stalled_then_served_by("llm.openai", "anthropic");
    assert!(out.stdout.contains("llm_timeout"), "the failover says why: {}", ctx(&out, &env.server));
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
    stalled_then_served_by("tts.elevenlabs", "cartesia");
}

#[test]
fn with_tts_gone_the_call_ends_with_its_own_reason() {
    let env = start(&["--sim-stall", "tts.elevenlabs"], &[]);
    let out = env.call_with(no_fallbacks, &["--tail", "5"]);
    assert_eq!(out.of("end")[0]["reason"], "tts_timeout", "{}", ctx(&out, &env.server));
}

#[test]
fn an_stt_that_never_accepts_fails_over_at_connect() {
    stalled_then_served_by("stt.deepgram", "assemblyai");
}
