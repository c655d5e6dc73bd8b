//! A small run of the load harness: `switchboard bench` starts its own `switchboard sim` and
//! `switchboard serve` processes and drives real-time Twilio calls: 20 for 10 s, and two on Polly.

mod util;

use serde_json::Value;

/// Runs `switchboard bench` with `args` (no provider keys from the environment); returns its
/// JSON report and its stdout.
fn bench(name: &str, args: &[&str]) -> (Value, String) {
    let dir = std::env::temp_dir().join(format!("bench-smoke-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let mut cmd = std::process::Command::new(util::bin());
    cmd.current_dir(util::root()).arg("bench").args(args).arg("--json").arg(&json);
    for (k, _) in std::env::vars() {
        if k.ends_with("_API_KEY") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run switchboard bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    (serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap(), stdout)
}

#[test]
fn bench_smoke_run_holds_20_calls_and_reports_server_costs() {
    let (r, stdout) = bench("twilio", &["--calls", "20", "--duration", "10", "--ramp", "2"]);
    assert_eq!(r["calls_held"], 20, "{r}");
    assert!(r["frames"]["sent"].as_u64().unwrap() >= 20 * 450, "real-time audio went out: {r}");
    assert!(r["frames"]["received"].as_u64().unwrap() > 0, "agents answered");
    assert!(r["server"]["cpu_s_per_call_minute"].as_f64().unwrap() > 0.0, "CPU read from the server process");
    assert!(r["server"]["rss_kb_per_call"].as_f64().is_some());
    assert!(r["hops"]["stt_final_to_llm_request"]["count"].as_f64().unwrap() >= 20.0, "{r}");
    assert!(r["hops"]["session_setup"]["p99_ms"].as_f64().is_some());
    // Every call's checkpoints (and its last, at hang-up) went through the ledger writer, and
    // calls shared commits.
    let (checkpoints, commits) = (r["store"]["checkpoints"].as_u64().unwrap(), r["store"]["commits"].as_u64().unwrap());
    assert!(checkpoints >= 20, "{r}");
    assert!(commits > 0 && commits < checkpoints, "{r}");
    // Every call's first utterance ends in silence, so each is timed; no answer can come
    // sooner than the simulators' own latencies add up to (a faster one would be mis-timed).
    let answer = &r["answer_ms"];
    assert!(answer["count"].as_u64().unwrap() >= 20, "{answer}");
    let floor = answer["floor"]["total_ms"].as_f64().unwrap();
    assert_eq!(floor, 300.0 + 300.0 + 350.0 + 150.0, "endpointing, STT final, LLM first token, TTS first audio");
    assert!(answer["p50"].as_f64().unwrap() >= floor - 20.0, "{answer}");
    assert!(answer["p50_over_floor"].as_f64().is_some(), "{answer}");
    assert!(stdout.contains("CPU-s per call-minute"), "a human table too");
}

/// The AWS providers sign with `ACCESS_KEY_ID:SECRET`: the bench's simulators and server must
/// share a key of that shape, or every call on Polly is refused (it was).
#[test]
fn bench_on_polly_answers_every_call() {
    let (r, _) = bench("polly", &["--calls", "2", "--duration", "6", "--ramp", "1", "--tts", "polly/neural"]);
    assert_eq!(r["tts"], "polly/neural", "{r}");
    assert_eq!(r["calls_held"], 2, "{r}");
    assert!(r["frames"]["received"].as_u64().unwrap() > 0, "Polly's audio reached the caller: {r}");
    assert!(r["answer_ms"]["count"].as_u64().unwrap() >= 2, "{r}");
}

/// `--server-wrapper` starts the server through another command (a profiler; here `env`, which
/// execs it in place): the calls are served and the server's memory is read from the wrapper's
/// process, which is the server (a few MB for `env` alone, tens for the server). A wrapper that
/// cannot start fails the bench with its error.
#[test]
fn bench_runs_its_server_under_a_wrapper_command() {
    let (r, _) = bench("wrapped", &["--calls", "1", "--duration", "5", "--ramp", "0", "--server-wrapper", "env"]);
    assert_eq!(r["calls_held"], 1, "{r}");
    assert!(r["frames"]["received"].as_u64().unwrap() > 0, "the wrapped server answered: {r}");
    assert!(r["server"]["rss_peak_kb"].as_u64().unwrap() > 10_000, "RSS read from the wrapped server: {r}");
    let out = std::process::Command::new(util::bin())
        .current_dir(util::root())
        .args(["bench", "--calls", "1", "--duration", "1", "--server-wrapper", "/nonexistent/profiler"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("starting switchboard serve"), "{err}");
    // A wrapper that starts but never runs the server: the bench gives up after
    // --start-timeout with that error, and does not leave the wrapper running.
    let dir = std::env::temp_dir().join(format!("bench-wrapper-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("never-starts.sh");
    let pid_file = dir.join("pid");
    std::fs::write(&script, format!("#!/bin/sh\necho $$ > {}\nexec sleep 120\n", pid_file.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut child = std::process::Command::new(util::bin())
        .current_dir(util::root())
        .args(["bench", "--calls", "1", "--duration", "1", "--start-timeout", "2", "--server-wrapper"])
        .arg(&script)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the bench hung on a server that never printed its address");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("switchboard serve printed no address within 2 s"), "{err}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(), "the wrapper was left running");
    let _ = std::fs::remove_dir_all(&dir);
}
