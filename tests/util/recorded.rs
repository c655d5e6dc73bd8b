//! What the recorded calls in `assets/calls/` make the sandbox agent say, and the checks every
//! gateway's barge-in call shares.

use super::CallOut;

/// The default agent's answer to "what are your opening hours?".
pub const HOURS: &str = "We are open from nine in the morning to five in the evening, Monday to Friday.";
/// How the story the caller of `barge_in.wav` asks for begins.
pub const STORY_START: &str = "Once upon a time, a small boat left the harbour at dawn.";

/// A barge-in as the caller's side saw it.
pub struct BargeIn {
    /// What the server says the caller heard of the story.
    pub kept: String,
    pub played_ms: u64,
    pub story: String,
}

/// `barge_in.wav` through any gateway: both caller lines heard, one barge-in, the story cut
/// at a non-empty prefix of what was written, and the hours answered afterwards.
pub fn assert_story_cut(out: &CallOut) -> BargeIn {
    assert!(out.ok, "call failed:\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.texts("transcript"),
        vec!["Can you tell me a long story about the sea?", "Stop, stop, what are your opening hours?"]
    );
    let barge = out.of("barge_in");
    assert_eq!(barge.len(), 1, "{}", out.stdout);
    let kept = barge[0]["kept_text"].as_str().unwrap_or("").to_string();
    let played_ms = barge[0]["played_ms"].as_u64().unwrap_or(0);
    let turns = out.agent_turns();
    let story = turns[0].clone();
    assert!(story.starts_with(STORY_START), "{story}");
    assert!(!kept.is_empty() && story.starts_with(&kept), "kept {kept:?} is a prefix of the story {story:?}");
    assert!(kept.len() < story.len(), "the story was cut: kept {kept:?}");
    assert_eq!(turns.last().map(String::as_str), Some(HOURS));
    BargeIn { kept, played_ms, story }
}

/// An agent on the sandbox's first-choice providers, briefed to be brief.
pub fn agent_spec() -> serde_json::Value {
    serde_json::json!({
        "stt": {"provider": "deepgram", "model": "nova-3"},
        "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "21m00Tcm4TlvDq8ikWAM"},
        "prompt": "Be brief."
    })
}

/// [`agent_spec`] with one fallback per service, for failover.
pub fn agent_spec_with_fallbacks() -> serde_json::Value {
    let mut spec = agent_spec();
    spec["fallbacks"] = serde_json::json!({
        "stt": [{"provider": "assemblyai", "model": "universal-streaming-english"}],
        "llm": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
        "tts": [{"provider": "cartesia", "model": "sonic-3", "voice": "f786b574-daa5-4673-aa0c-cbe3e8534c02"}]
    });
    spec
}

/// The server environment of a failover test: a key for every provider of
/// [`agent_spec_with_fallbacks`], the simulators refusing those of `refused`, and the admin token.
pub fn failover_env(refused: &[&str], admin: &str) -> Vec<(&'static str, String)> {
    let providers = ["deepgram", "assemblyai", "openai", "anthropic", "elevenlabs", "cartesia"];
    let mut env: Vec<(&'static str, String)> = providers
        .iter()
        .map(|p| {
            let var: &'static str = Box::leak(format!("{}_API_KEY", p.to_uppercase()).into_boxed_str());
            (var, if refused.contains(p) { "revoked-key".to_string() } else { "sim-key".to_string() })
        })
        .collect();
    env.push(("SWITCHBOARD_ADMIN_TOKEN", admin.to_string()));
    env
}
