use billing::UsageRecord;
use serde::Serialize;

/// What happens in a session, as watchers see it (client websocket, `/api/calls/{sid}/events`).
#[derive(Debug, Clone, Serialize)]
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
