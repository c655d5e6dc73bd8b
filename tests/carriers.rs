//! End to end over the other carriers: a real `switchboard serve` in sandbox mode, recorded
//! calls played by `switchboard call --gateway telnyx|plivo|vonage|asterisk` in each carrier's
//! own wire format (AudioSocket over raw TCP), watched over the call's SSE events.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use util::recorded::*;
use util::*;

fn within(actual: f64, expected: f64, pct: f64) -> bool {
    (actual - expected).abs() <= expected * pct / 100.0
}

fn assert_ok(out: &CallOut) {
    assert!(out.ok, "call failed:\n{}\n{}", out.stdout, out.stderr);
}

/// The simple call over `gateway`, with the agent's audio saved and checked against what was
/// counted, and the call found in the store under the carrier's own call id.
fn simple_call_over(gateway: &str, wire_rate: u32) {
    simple_call_on(&Server::sandbox(), gateway, wire_rate, &[]);
}

fn simple_call_on(server: &Server, gateway: &str, wire_rate: u32, extra: &[&str]) {
    let saved = server.dir.join("agent.wav");
    let saved_arg = saved.display().to_string();
    let mut args = vec!["--gateway", gateway, "--save-audio", &saved_arg];
    args.extend_from_slice(extra);
    let out = call(&server.url, &asset("simple.wav"), &args);
    assert_ok(&out);

    assert_eq!(out.texts("transcript"), vec!["Hello, what are your opening hours?"]);
    assert_eq!(out.agent_turns(), vec![HOURS]);
    let audio_ms: u64 = out.of("audio").iter().map(|a| a["ms"].as_u64().unwrap_or(0)).sum();
    assert!(audio_ms > 2000, "agent audio reached the caller: {audio_ms} ms\n{}", out.stdout);
    assert!(out.of("error").is_empty(), "{}", out.stdout);

    let (stt_s, _) = out.usage_sum("stt");
    assert!(within(stt_s, duration_s("simple"), 5.0), "stt seconds {stt_s} vs {}", duration_s("simple"));
    let (chars, _) = out.usage_sum("tts");
    assert!(within(chars, HOURS.len() as f64, 5.0), "tts characters {chars} vs {}", HOURS.len());
    let (in_tokens, _) = out.usage_sum("llm.input");
    assert!(in_tokens > 10.0, "llm.input {in_tokens}");
    let (out_tokens, _) = out.usage_sum("llm.output");
    assert_eq!(out_tokens, HOURS.split_whitespace().count() as f64, "llm.output tokens");

    // What was saved is what was counted, at the carrier's rate.
    let (pcm, rate) = media::wav::read_wav(&saved).expect("saved agent audio");
    assert_eq!(rate, wire_rate);
    assert_eq!(pcm.len() as u64 * 1000 / u64::from(rate), audio_ms);

    // The server registered the call under the id the carrier sent, and it hung up cleanly.
    let stored = server.wait_closed(&out.call_sid());
    assert_eq!(stored["gateway"], gateway, "{stored}");
    assert_eq!(stored["end_reason"], "hangup", "{stored}");
    assert_eq!(stored["usage"].as_array().map(Vec::len), Some(out.of("usage").len()));
    assert!(!server.log_text().contains("bad gateway message"), "the server accepted every frame");
}

#[test]
fn simple_call_over_telnyx() {
    simple_call_over("telnyx", 8000);
}

#[test]
fn simple_call_over_plivo() {
    simple_call_over("plivo", 8000);
}

#[test]
fn simple_call_over_vonage() {
    simple_call_over("vonage", 16000);
}

#[test]
fn caller_talking_over_the_agent_on_vonage_cuts_it_off() {
    let server = Server::sandbox();
    let out = call(&server.url, &asset("barge_in.wav"), &["--gateway", "vonage"]);
    assert_story_cut(&out);
    let cleared = out.of("audio").iter().any(|a| a["at"] == "cleared");
    assert!(cleared, "the server cleared the caller's playback:\n{}", out.stdout);
}

/// A sandbox server that also takes AudioSocket calls, and the TCP address it bound. The
/// address is printed after the HTTP one, which is the only line the util reads; the log has it
/// too.
fn audiosocket_server(extra: &[&str]) -> (Server, String) {
    let mut args = vec!["--audiosocket-listen".to_string(), "127.0.0.1:0".to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let server = Server::start(ServerOpts { env: vec![], args });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log_text();
        let addr = log
            .split("audiosocket listening on tcp://")
            .nth(1)
            .map(|rest| rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect::<String>());
        if let Some(addr) = addr.filter(|a| a.contains(':')) {
            return (server, addr);
        }
        assert!(Instant::now() < deadline, "no AudioSocket address in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn simple_call_over_asterisk_audiosocket() {
    let (server, addr) = audiosocket_server(&[]);
    simple_call_on(&server, "asterisk", 8000, &["--audiosocket", &addr]);
}

#[test]
fn caller_talking_over_the_agent_on_asterisk_stops_its_audio() {
    let (server, addr) = audiosocket_server(&[]);
    let out = call(&server.url, &asset("barge_in.wav"), &["--gateway", "asterisk", "--audiosocket", &addr]);
    let BargeIn { played_ms, story, .. } = assert_story_cut(&out);

    // AudioSocket has no clear: the caller hears the story stop because the server stops
    // sending it. What reached the caller before the answer began is what the server says was
    // played, and far less than the whole story (the simulated voice speaks 50 ms a character).
    let story_turn = &out.of("agent")[0]["turn"];
    let mut story_ms = 0;
    for l in &out.lines {
        if l["type"] == "agent" && l["turn"] != *story_turn {
            break;
        }
        if l["type"] == "audio" {
            story_ms += l["ms"].as_u64().unwrap_or(0);
        }
    }
    assert!(out.of("audio").iter().any(|a| a["at"] == "stopped"), "the audio paused:\n{}", out.stdout);
    assert!(story_ms.abs_diff(played_ms) <= 40, "received {story_ms} ms of the story, server played {played_ms}");
    assert!(story_ms * 2 < story.len() as u64 * 50, "the story stopped early: {story_ms} ms");
    let stored = server.wait_closed(&out.call_sid());
    assert_eq!(stored["gateway"], "asterisk", "{stored}");
    assert_eq!(stored["end_reason"], "hangup", "{stored}");
}

/// One raw AudioSocket message.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Connect, send `bytes`, and read what the server sends until it closes.
fn exchange(addr: &str, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(addr).expect("connect to the AudioSocket port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    s.write_all(bytes).expect("write");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("the server closes the connection");
    (got, t0.elapsed())
}

#[test]
fn audiosocket_refuses_bad_input_and_keeps_serving() {
    let (server, addr) = audiosocket_server(&["--audiosocket-uuid-timeout-ms", "300"]);
    const ERROR_THEN_HANGUP: [u8; 6] = [0xff, 0, 0, 0, 0, 0];
    let uuid = uuid::Uuid::new_v4();
    let silence = frame(0x10, &[0; 320]);

    // Not AudioSocket at all: refused on the first three bytes.
    let (got, _) = exchange(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(got, ERROR_THEN_HANGUP);
    // Audio before the UUID.
    let (got, _) = exchange(&addr, &silence);
    assert_eq!(got, ERROR_THEN_HANGUP);
    // A length no frame has, before any payload is read.
    let (got, _) = exchange(&addr, &[0x01, 0xff, 0xff]);
    assert_eq!(got, ERROR_THEN_HANGUP);
    // Silence: dropped once the UUID deadline passes.
    let (got, took) = exchange(&addr, &[]);
    assert_eq!(got, ERROR_THEN_HANGUP);
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "dropped after {took:?}");

    // A call that breaks its framing mid-call: the session ends, billed, with an error first.
    let mut call = frame(0x01, uuid.as_bytes());
    for _ in 0..25 {
        call.extend_from_slice(&silence);
    }
    call.extend_from_slice(&[0x10, 0xff, 0xff]);
    let (got, _) = exchange(&addr, &call);
    assert_eq!(got, ERROR_THEN_HANGUP);
    let stored = server.wait_closed(&uuid.to_string());
    assert_eq!(stored["gateway"], "asterisk", "{stored}");
    assert_eq!(stored["end_reason"], "gateway_disconnected", "{stored}");

    // And a good call still works: our hang-up is answered with the server's, no error, and
    // the session is settled with its usage.
    let uuid = uuid::Uuid::new_v4();
    let mut call = frame(0x01, uuid.as_bytes());
    for _ in 0..50 {
        call.extend_from_slice(&silence);
    }
    call.extend_from_slice(&[0, 0, 0]);
    let (got, _) = exchange(&addr, &call);
    assert_eq!(got, [0, 0, 0]);
    let stored = server.wait_closed(&uuid.to_string());
    assert_eq!(stored["end_reason"], "hangup", "{stored}");
    let usage = stored["usage"].as_array().cloned().unwrap_or_default();
    assert!(usage.iter().any(|u| u["line"] == "stt"), "stt usage settled: {stored}");

    assert_eq!(server.get("/healthz")["status"], "ok");
    let metrics = server.metrics();
    for code in ["unknown_kind", "missing_uuid", "oversize", "uuid_timeout"] {
        let seen = metrics.lines().any(|l| {
            l.starts_with("switchboard_gateway_errors_total")
                && l.contains("gateway=\"asterisk\"")
                && l.contains(&format!("code=\"{code}\""))
        });
        assert!(seen, "{code} counted:\n{metrics}");
    }
    assert!(!server.log_text().contains("panicked"), "no panic");
}
