//! Provider step limits: every wait on a provider in a turn has a deadline. A step over its
//! limit is a provider failure: the service fails over to its fallback within the same turn;
//! with none left the caller hears the apology line (or, when TTS itself is gone, the call
//! ends with its own reason) — never silence.

use super::*;

/// The limits a session runs under: server defaults, overridden per agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepLimits {
    pub llm_first_token: Duration,
    pub llm_stall: Duration,
    pub tts_connect: Duration,
    pub tts_first_audio: Duration,
    pub tts_stall: Duration,
    pub stt_result: Duration,
    pub stt_connect: Duration,
}

impl Default for StepLimits {
    fn default() -> Self {
        Self {
            llm_first_token: Duration::from_secs(8),
            llm_stall: Duration::from_secs(5),
            tts_connect: Duration::from_secs(5),
            tts_first_audio: Duration::from_secs(5),
            tts_stall: Duration::from_secs(5),
            stt_result: Duration::from_secs(8),
            stt_connect: Duration::from_secs(5),
        }
    }
}

impl StepLimits {
    /// The defaults with the agent's overrides.
    pub(crate) fn for_agent(t: &billing::Timeouts) -> Self {
        let d = Self::default();
        let ms = |v: Option<u64>, default: Duration| v.map(|v| Duration::from_millis(v.max(1))).unwrap_or(default);
        Self {
            llm_first_token: ms(t.llm_first_token_ms, d.llm_first_token),
            llm_stall: ms(t.llm_stall_ms, d.llm_stall),
            tts_connect: ms(t.tts_connect_ms, d.tts_connect),
            tts_first_audio: ms(t.tts_first_audio_ms, d.tts_first_audio),
            tts_stall: ms(t.tts_stall_ms, d.tts_stall),
            stt_result: ms(t.stt_result_ms, d.stt_result),
            stt_connect: ms(t.stt_connect_ms, d.stt_connect),
        }
    }
}

/// What the agent says when no provider can answer, unless the agent sets its own line.
pub(crate) const DEFAULT_APOLOGY: &str =
    "I am sorry, I am having trouble answering right now. Could you say that again?";
/// What the agent says before hanging up when it can no longer hear the caller.
const CANNOT_HEAR_LINE: &str = "I am sorry, I cannot hear you anymore. Please call again. Goodbye.";

impl TurnManager {
    /// The earliest pending deadline of the turn loop.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let agent = self.agent.as_ref().map(|a| [a.llm_deadline, a.tts_deadline]).unwrap_or_default();
        agent.into_iter().chain([self.stt_deadline]).flatten().min()
    }

    /// A deadline passed: fail the step's provider.
    pub(super) async fn on_timeout(&mut self) {
        let now = Instant::now();
        if self.stt_deadline.is_some_and(|d| d <= now) {
            self.stt_deadline = None;
            self.stt_timed_out().await;
            return;
        }
        let Some(a) = self.agent.as_mut() else { return };
        if a.llm_deadline.is_some_and(|d| d <= now) {
            a.llm_deadline = None;
            a.llm_start = None;
            a.llm_rx = None;
            self.llm_failed("llm_timeout", format!("{} did not answer in time", self.llm_plan.provider));
            return;
        }
        if a.tts_deadline.is_some_and(|d| d <= now) {
            a.tts_deadline = None;
            a.tts_connect = None;
            a.tts_rx = None;
            a.tts_tx = None;
            self.tts_failed("tts_timeout", format!("{} did not answer in time", self.tts_plan.provider));
        }
    }

    /// The LLM failed this turn: its fallback takes over; with none left, the caller hears
    /// what was already said, or the apology when nothing was.
    pub(super) fn llm_failed(&mut self, code: &str, message: String) {
        if let Some(a) = self.agent.as_mut() {
            trace::fail(&mut a.llm_span, code);
        }
        if self.pending_failover(Service::Llm, code) {
            self.provider_failed(Service::Llm, code, &message);
            return;
        }
        self.error(Service::Llm, code, message);
        let spoke = self.agent.as_ref().is_some_and(|a| !a.text.trim().is_empty());
        if spoke {
            self.llm_finished();
            return;
        }
        if let Some(mut a) = self.agent.take() {
            // Refused or silent before any token: nothing was generated to bill.
            a.llm_usage_seen = true;
            self.abandon(a, "failed");
        }
        let line = self.apology.clone();
        self.say_line(&line);
    }

    /// TTS failed: its fallback takes over; with none left nothing can be said any more, so
    /// the call ends with this reason.
    pub(super) fn tts_failed(&mut self, code: &str, message: String) {
        if let Some(a) = self.agent.as_mut() {
            trace::fail(&mut a.tts_span, code);
        }
        if self.pending_failover(Service::Tts, code) {
            self.provider_failed(Service::Tts, code, &message);
            return;
        }
        self.error(Service::Tts, code, message.clone());
        if let Some(a) = self.agent.take() {
            self.abandon(a, "failed");
        }
        if self.closing.is_some() {
            // The goodbye cannot be spoken: hang up with the reason it was for.
            self.hang_up = true;
        } else {
            self.fatal = Some(EndReason::ProviderFailed { code: code.to_string(), message });
        }
    }

    /// The caller finished speaking and STT said nothing at all: it is failed over; with no
    /// fallback the agent says it cannot hear and hangs up.
    async fn stt_timed_out(&mut self) {
        let message = format!("{} sent no result after the caller spoke", self.stt_plan.provider);
        self.provider_failed(Service::Stt, "stt_timeout", &message);
        if self.fail_over_stt("stt_timeout").await {
            return;
        }
        self.publish(SessionEvent::Error { code: "stt_timeout".into(), message: message.clone() });
        let reason = EndReason::ProviderFailed { code: "stt_timeout".into(), message };
        self.say_closing_line(CANNOT_HEAR_LINE, reason).await;
    }
}
