//! End to end over the other carriers: a real `switchboard serve` in sandbox mode, recorded
//! calls played by `switchboard call --gateway telnyx|plivo|vonage` in each carrier's own wire
//! format, watched over the call's SSE events.

mod util;

use util::*;

const HOURS: &str = "We are open from nine in the morning to five in the evening, Monday to Friday.";
const STORY_START: &str = "Once upon a time, a small boat left the harbour at dawn.";

fn within(actual: f64, expected: f64, pct: f64) -> bool {
    (actual - expected).abs() <= expected * pct / 100.0
}

fn assert_ok(out: &CallOut) {
    assert!(out.ok, "call failed:\n{}\n{}", out.stdout, out.stderr);
}

/// The simple call over `gateway`, with the agent's audio saved and checked against what was
/// counted, and the call found in the store under the carrier's own call id.
fn simple_call_over(gateway: &str, wire_rate: u32) {
    let server = Server::sandbox();
    let saved = server.dir.join("agent.wav");
    let saved_arg = saved.display().to_string();
    let out = call(&server.url, &asset("simple.wav"), &["--gateway", gateway, "--save-audio", &saved_arg]);
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
    assert_ok(&out);
    assert_eq!(
        out.texts("transcript"),
        vec!["Can you tell me a long story about the sea?", "Stop, stop, what are your opening hours?"]
    );
    let barge = out.of("barge_in");
    assert_eq!(barge.len(), 1, "{}", out.stdout);
    let kept = barge[0]["kept_text"].as_str().unwrap_or("");
    let turns = out.agent_turns();
    let story = &turns[0];
    assert!(story.starts_with(STORY_START), "{story}");
    assert!(!kept.is_empty() && story.starts_with(kept), "kept {kept:?} is a prefix of the story {story:?}");
    assert!(kept.len() < story.len(), "the story was cut: kept {kept:?}");
    let cleared = out.of("audio").iter().any(|a| a["at"] == "cleared");
    assert!(cleared, "the server cleared the caller's playback:\n{}", out.stdout);
    assert_eq!(turns.last().map(String::as_str), Some(HOURS));
}
