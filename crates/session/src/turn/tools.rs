//! Tool rounds inside the agent's turn: the model's calls are collected while it streams; when
//! its answer ends with calls, the turn speaks the tools' filler, runs them (a future polled in
//! the main loop, so barge-in is still heard) and asks the model again with their results. Each
//! round's tokens are settled as their own usage lines when it ends (`bill_llm_round`).

use super::*;
use crate::tools::{Done, Outcome};
use llm::ToolCall;

/// Tool rounds one turn may run before the model must answer in words (a model that keeps
/// calling tools would otherwise never speak).
pub(crate) const MAX_TOOL_ROUNDS: u32 = 4;

/// The tool rounds of one agent turn.
#[derive(Default)]
pub(crate) struct ToolRounds {
    /// Tool calls of the LLM round under way.
    calls: Vec<ToolCall>,
    /// The round's tools running, polled in the main loop (dropping it cancels webhooks).
    pub(super) run: Option<BoxFuture<'static, Vec<Done>>>,
    /// Calls running and not answered yet (each gets a "cancelled" result when cut).
    running: Vec<ToolCall>,
    /// This turn's assistant calls and tool results, in order, for the conversation.
    exchange: Vec<Message>,
    /// How much of `exchange` the current request already holds.
    exchange_sent: usize,
    /// Tool rounds run in this turn.
    count: u32,
    /// Where the current LLM round's text starts in the turn's text.
    text_start: usize,
}

impl ToolRounds {
    /// Where the current LLM round's text starts in the turn's text.
    pub(super) fn text_start(&self) -> usize {
        self.text_start
    }

    /// The round under way is asked again (LLM failover): its calls so far are dropped.
    pub(super) fn forget_calls(&mut self) {
        self.calls.clear();
    }
}

/// Given to a call the caller interrupted before its result came back.
const CANCELLED: &str = r#"{"error":"cancelled: the caller interrupted"}"#;

impl TurnManager {
    /// The model called a tool: kept for the end of its answer, shown to watchers now.
    pub(super) fn on_tool_call(&mut self, call: ToolCall) {
        let Some(a) = self.agent.as_mut() else { return };
        a.llm_deadline = Some(Instant::now() + self.steps.llm_stall);
        let turn = a.id;
        a.tool.calls.push(call.clone());
        tracing::info!(tool = %call.name, call_id = %call.id, "tool called");
        self.publish(SessionEvent::ToolCall { turn, call_id: call.id, name: call.name, arguments: call.arguments });
    }

    /// The model's answer ended with tool calls: run them instead of ending the turn. `false`
    /// when there is nothing to run (no calls, no tools, or the round cap is reached).
    pub(super) fn start_tool_round(&mut self) -> bool {
        let Some(tools) = self.tools.clone() else { return false };
        let Some(a) = self.agent.as_mut() else { return false };
        if a.tool.calls.is_empty() {
            return false;
        }
        if a.tool.count >= MAX_TOOL_ROUNDS {
            tracing::warn!(rounds = a.tool.count, "tool round cap reached; the calls are not run");
            a.tool.calls.clear();
            return false;
        }
        let calls = std::mem::take(&mut a.tool.calls);
        let said = a.text.get(a.tool.text_start..).unwrap_or_default().to_string();
        a.tool.exchange.push(Message::assistant_calls(said, calls.clone()));
        a.tool.running.clone_from(&calls);
        a.tool.run = Some(tools.run(calls.clone()));
        a.llm_rx = None;
        a.llm_deadline = None;
        if let Some(rest) = a.chunker.finish() {
            self.speak(rest);
        }
        let filler = calls.iter().find_map(|c| tools.filler(&c.name)).map(str::to_string);
        if let Some(line) = filler {
            if let Some(a) = self.agent.as_mut() {
                a.text.push_str(if a.text.is_empty() { "" } else { " " });
                a.text.push_str(&line);
            }
            self.speak(line);
        }
        self.tts_send(TtsInput::Flush);
        true
    }

    /// A round's tools finished: end the call, or give the model their results.
    pub(super) async fn on_tools_done(&mut self, done: Vec<Done>) {
        let Some(a) = self.agent.as_mut() else { return };
        a.tool.run = None;
        a.tool.running.clear();
        let turn = a.id;
        for d in &done {
            a.tool.exchange.push(Message::tool_result(d.call.id.clone(), d.result_text()));
        }
        for d in &done {
            let (call_id, name, result) = (d.call.id.clone(), d.call.name.clone(), d.result_text());
            self.publish(SessionEvent::ToolResult { turn, call_id, name, result });
        }
        if let Some(to) = done.iter().find_map(|d| match &d.outcome {
            Outcome::Transferred { to } => Some(to.clone()),
            _ => None,
        }) {
            self.on_transferred(&to);
            return;
        }
        if let Some(line) = done.iter().find_map(|d| match &d.outcome {
            Outcome::EndCall { closing_line } => Some(closing_line.clone()),
            _ => None,
        }) {
            self.say_closing_line(&line, EndReason::AgentEnded).await;
            return;
        }
        self.next_llm_round();
    }

    /// The call went to `to` at the carrier (its round finished, or a barge-in had dropped it):
    /// the session ends without hanging up.
    pub(super) fn on_transferred(&mut self, to: &str) {
        tracing::info!(%to, "call transferred: the session ends");
        self.closing_reason = EndReason::Transferred;
        self.hang_up = true;
    }

    /// Ask the model again, with the round's calls and results added.
    fn next_llm_round(&mut self) {
        let Some(a) = self.agent.as_mut() else { return };
        let mut messages = Vec::with_capacity(a.messages.len() + 4);
        messages.extend(a.messages.iter().cloned());
        messages.extend(a.tool.exchange[a.tool.exchange_sent..].iter().cloned());
        a.tool.exchange_sent = a.tool.exchange.len();
        a.input_chars = messages.iter().map(message_chars).sum();
        let messages = Arc::new(messages);
        a.messages = messages.clone();
        a.tool.count += 1;
        a.tool.text_start = a.text.len();
        a.llm_usage_seen = false;
        a.llm_requested_at = Instant::now();
        a.llm_deadline = Some(Instant::now() + self.steps.llm_first_token);
        a.llm_span = Some(OutcomeSpan::provider(a.span.span(), Service::Llm, &self.llm_plan));
        let start = self.llm_start(messages);
        if let Some(a) = self.agent.as_mut() {
            a.llm_start = Some(start);
        }
    }

    /// What a cut turn leaves in the conversation: its finished rounds, and a "cancelled"
    /// result for each call still running, so the next request pairs every call.
    pub(super) fn keep_exchange(&mut self, a: &mut AgentTurn) {
        let cancelled = a.tool.running.drain(..).map(|c| Message::tool_result(c.id, CANCELLED));
        a.tool.exchange.extend(cancelled);
        self.conversation.append(&mut a.tool.exchange);
    }
}

/// The characters a request's message adds, for the token estimate.
pub(super) fn message_chars(m: &Message) -> usize {
    m.content.len() + 12 + m.tool_calls.iter().map(|c| c.name.len() + c.arguments.len() + 12).sum::<usize>()
}
