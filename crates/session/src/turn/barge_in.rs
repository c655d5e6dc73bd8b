//! Barge-in: the caller speaks over the agent; the reply is cut to what was played.

use super::*;

impl TurnManager {
    /// The caller spoke while the agent's turn was running.
    pub(super) async fn interrupt(&mut self, a: AgentTurn, speech_at: Instant) {
        if !a.audio_started {
            // Still thinking: the caller just kept talking. Take the request back and let the
            // next final extend it.
            let user_text = a.user_text.clone();
            self.abandon(a, "caller_continued");
            if self.conversation.last().is_some_and(|m| m.role == Role::User && m.content == user_text) {
                self.conversation.pop();
            }
            self.user_buf = if self.user_buf.is_empty() { user_text } else { format!("{user_text} {}", self.user_buf) };
            return;
        }
        let (tx, rx) = oneshot::channel();
        let turn = a.id;
        let _ = self.writer.send(WriterCmd::Clear { turn, reply: tx }).await;
        metrics::histogram!(m::HOP, "hop" => "speech_to_clear").record(speech_at.elapsed().as_secs_f64());
        metrics::counter!(m::BARGE_INS).increment(1);
        let played_ms =
            tokio::time::timeout(Duration::from_millis(500), rx).await.ok().and_then(Result::ok).unwrap_or(0);
        let mut a = a;
        self.keep_exchange(&mut a);
        let kept = kept_text(&a, played_ms);
        let kept_clean = kept.trim().to_string();
        if !kept_clean.is_empty() {
            self.conversation.push(Message::new(Role::Assistant, kept_clean.clone()));
        }
        tracing::info!(turn, played_ms, kept_chars = kept_clean.len(), "barge-in: agent cut off");
        self.publish(SessionEvent::BargeIn { turn, played_ms, kept_text: kept_clean });
        self.abandon(a, "barge_in");
    }

    /// Drop a turn's provider streams (closing them, their spans `cancelled`), bill what it
    /// used, and end its span with `outcome`.
    pub(super) fn abandon(&mut self, mut a: AgentTurn, outcome: &'static str) {
        a.span.end(outcome);
        if !a.llm_usage_seen {
            self.meter.add(LineId::LlmIn, estimate_tokens(a.input_chars), true);
            self.meter.add(LineId::LlmOut, estimate_tokens(a.text.len()), true);
        }
        drop(a);
    }
}

/// What the caller heard of a turn: characters whose audio started before `played_ms`.
/// Without alignment, the same share of the text as of the audio.
fn kept_text(a: &AgentTurn, played_ms: u64) -> String {
    if !a.aligned.is_empty() {
        return a.aligned.iter().take_while(|(_, start)| u64::from(*start) < played_ms).map(|(c, _)| *c).collect();
    }
    if a.audio_ms == 0 {
        return String::new();
    }
    let n = a.text.chars().count() as u64 * played_ms.min(a.audio_ms) / a.audio_ms;
    a.text.chars().take(n as usize).collect()
}
