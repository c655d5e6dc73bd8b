use billing::UsageRecord;
use serde::{Deserialize, Serialize};

/// What happens in a session, as watchers see it (client websocket, `/api/calls/{sid}/events`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    Started {
        session_id: String,
        call_sid: Option<String>,
    },
    /// Caller speech; `is_final` false for interim hypotheses.
    Transcript {
        text: String,
        is_final: bool,
    },
    /// A speakable chunk of the agent's reply, as it is sent to TTS.
    Agent {
        text: String,
        turn: u64,
    },
    /// The agent's turn finished playing.
    AgentDone {
        text: String,
        turn: u64,
    },
    /// The caller talked over the agent: playback cleared, reply truncated to what was played.
    BargeIn {
        turn: u64,
        played_ms: u64,
        kept_text: String,
    },
    Dtmf {
        digit: String,
    },
    /// The model called one of the agent's tools (arguments as the model wrote them).
    ToolCall {
        turn: u64,
        call_id: String,
        name: String,
        arguments: String,
    },
    /// A tool call finished: its result as the model reads it (an error result included).
    ToolResult {
        turn: u64,
        call_id: String,
        name: String,
        result: String,
    },
    Usage {
        records: Vec<UsageRecord>,
    },
    Error {
        code: String,
        message: String,
    },
    /// A provider failed and the service moved to the agent's next fallback mid-call.
    Failover {
        service: String,
        from: String,
        to: String,
        code: String,
    },
    End {
        reason: String,
    },
}
