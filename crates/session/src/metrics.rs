//! Every metric name in one place. `session_id` is never a label.

pub const SESSIONS_ACTIVE: &str = "switchboard_sessions_active";
pub const SESSIONS_TOTAL: &str = "switchboard_sessions_total";
pub const SESSIONS_REFUSED: &str = "switchboard_sessions_refused_total";
/// direction=in|out, gateway=twilio|client
pub const FRAMES: &str = "switchboard_frames_total";
/// queue=stt_in|…
pub const FRAMES_DROPPED: &str = "switchboard_frames_dropped_total";
/// gateway, reason=ahead_of_clock: inbound audio beyond real time, dropped unbilled
pub const GATEWAY_FRAMES_DROPPED: &str = "switchboard_gateway_frames_dropped_total";
/// carrier, result=ended|already_ended|failed: hang-ups sent over the carrier's REST API
pub const CARRIER_HANGUPS: &str = "switchboard_carrier_hangups_total";
/// gateway, code
pub const GATEWAY_ERRORS: &str = "switchboard_gateway_errors_total";
/// service, provider: time to first result (STT final after end of speech, LLM first token,
/// TTS first audio after first text).
pub const TIME_TO_FIRST: &str = "switchboard_provider_time_to_first_seconds";
/// service, provider, code
pub const PROVIDER_ERRORS: &str = "switchboard_provider_errors_total";
/// hop=stt_final_to_llm_request|llm_first_token_to_tts_text|tts_first_audio_to_gateway|speech_to_clear
pub const HOP: &str = "switchboard_hop_latency_seconds";
/// service, provider, unit, billed_to: metering atoms (ms, characters, tokens)
pub const USAGE_ATOMS: &str = "switchboard_usage_atoms_total";
/// service, provider, billed_to: spend
pub const USAGE_MICROS: &str = "switchboard_usage_amount_micros_total";
pub const BARGE_INS: &str = "switchboard_barge_ins_total";
/// Plan resolution at session start (store reads included, provider handshakes excluded).
pub const PLAN_TIME: &str = "switchboard_session_plan_seconds";
/// From the gateway's `start` to the STT stream being connected (handshake included).
pub const SETUP_TIME: &str = "switchboard_session_setup_seconds";

/// Transactions the ledger writer committed, and the call checkpoints they carried: their
/// ratio is how many checkpoints share a commit.
pub const LEDGER_COMMITS: &str = "switchboard_ledger_commits_total";
pub const LEDGER_CHECKPOINTS: &str = "switchboard_ledger_checkpoints_total";

/// Describe metrics once at startup so `/metrics` has HELP lines.
pub fn describe() {
    metrics::describe_gauge!(SESSIONS_ACTIVE, "Sessions currently running");
    metrics::describe_counter!(SESSIONS_TOTAL, "Sessions started");
    metrics::describe_counter!(SESSIONS_REFUSED, "Sessions refused before any provider was called, by code");
    metrics::describe_counter!(FRAMES, "Audio frames exchanged with gateways");
    metrics::describe_counter!(FRAMES_DROPPED, "Audio frames dropped on a full queue");
    metrics::describe_counter!(GATEWAY_FRAMES_DROPPED, "Inbound gateway frames dropped, by reason");
    metrics::describe_counter!(CARRIER_HANGUPS, "Calls hung up through the carrier's REST API, by result");
    metrics::describe_counter!(GATEWAY_ERRORS, "Bad gateway messages, by code");
    metrics::describe_histogram!(TIME_TO_FIRST, metrics::Unit::Seconds, "Provider time to first result");
    metrics::describe_counter!(PROVIDER_ERRORS, "Provider errors, by code");
    metrics::describe_histogram!(HOP, metrics::Unit::Seconds, "Latency the orchestrator adds per hop");
    metrics::describe_counter!(USAGE_ATOMS, "Usage quantity in metering atoms (ms, characters, tokens)");
    metrics::describe_counter!(USAGE_MICROS, "Usage amount in micro-USD");
    metrics::describe_counter!(BARGE_INS, "Barge-ins (caller spoke over the agent)");
    metrics::describe_histogram!(PLAN_TIME, metrics::Unit::Seconds, "Plan resolution at session start");
    metrics::describe_histogram!(SETUP_TIME, metrics::Unit::Seconds, "Gateway start to STT connected");
    metrics::describe_counter!(LEDGER_COMMITS, "Store transactions committed by the ledger writer");
    metrics::describe_counter!(LEDGER_CHECKPOINTS, "Call checkpoints committed by the ledger writer");
}
