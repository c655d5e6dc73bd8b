//! Trace spans of a session, below the `session` span `runtime` opens: a `turn` span per agent
//! turn and a span per provider request (`stt.stream`, `llm.request`, `tts.request`).
//!
//! They are plain `tracing` spans, exported over OTLP when the server is configured to. The
//! turn loop holds them in its state instead of entering them (a turn lives across many wakes
//! of one task), so a span ends when its holder drops it: a turn cut by a barge-in ends its
//! provider spans with it. Attributes are names, ids and outcomes only: never a key, a token or
//! what was said. Nothing here runs per audio frame.

use billing::{Service, ServicePlan};
use tracing::field::Empty;
use tracing::Span;

/// A span that records how its step ended, once: `end`/`fail` by the code that knows, or the
/// default outcome when the span is dropped without either (the session ended under it).
pub(crate) struct OutcomeSpan {
    span: Span,
    default: &'static str,
    done: bool,
}

impl OutcomeSpan {
    /// An agent turn: `reply` (the LLM answers the caller) or `line` (a fixed line: apology,
    /// goodbye).
    pub(crate) fn turn(parent: &Span, id: u64, kind: &'static str) -> Self {
        // Integers as i64: OTLP has no unsigned type, and a u64 would be exported as text.
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        let span = tracing::info_span!(parent: parent, "turn", turn.id = id, turn.kind = kind, outcome = Empty);
        Self { span, default: "ended", done: false }
    }

    /// One request to a provider, as a client span under `parent`.
    pub(crate) fn provider(parent: &Span, service: Service, plan: &ServicePlan) -> Self {
        macro_rules! span {
            ($name:literal) => {
                tracing::info_span!(
                    parent: parent,
                    $name,
                    otel.kind = "client",
                    service = service.as_str(),
                    provider = %plan.provider,
                    model = %plan.model,
                    billed_to = plan.billed_to.as_str(),
                    outcome = Empty,
                    error.code = Empty,
                    otel.status_code = Empty,
                    input_tokens = Empty,
                    output_tokens = Empty,
                )
            };
        }
        let span = match service {
            Service::Stt => span!("stt.stream"),
            Service::Llm => span!("llm.request"),
            _ => span!("tts.request"),
        };
        Self { span, default: "cancelled", done: false }
    }

    /// The span, as a parent of others.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Record how the step ended (the first call wins).
    pub(crate) fn end(&mut self, outcome: &'static str) {
        if !self.done {
            self.done = true;
            self.span.record("outcome", outcome);
        }
    }

    /// The step failed with a provider error `code` (`llm_timeout`, `stt_closed`, …).
    pub(crate) fn fail(&mut self, code: &str) {
        if !self.done {
            self.end("failed");
            self.span.record("error.code", code);
            self.span.record("otel.status_code", "ERROR");
        }
    }

    /// Token counts of an LLM request, as the provider reported them (or estimated).
    pub(crate) fn tokens(&self, input: u64, output: u64) {
        self.span.record("input_tokens", i64::try_from(input).unwrap_or(i64::MAX));
        self.span.record("output_tokens", i64::try_from(output).unwrap_or(i64::MAX));
    }
}

impl Drop for OutcomeSpan {
    fn drop(&mut self) {
        let default = self.default;
        self.end(default);
    }
}

/// End the span in `slot`, if any, with `outcome`; it closes here.
pub(crate) fn end(slot: &mut Option<OutcomeSpan>, outcome: &'static str) {
    if let Some(mut s) = slot.take() {
        s.end(outcome);
    }
}

/// Fail the span in `slot`, if any, with `code`; it closes here.
pub(crate) fn fail(slot: &mut Option<OutcomeSpan>, code: &str) {
    if let Some(mut s) = slot.take() {
        s.fail(code);
    }
}
