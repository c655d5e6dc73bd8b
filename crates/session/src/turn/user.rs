//! The caller's turn: STT results and VAD events, and deciding when the caller has finished.

use super::*;

impl TurnManager {
    pub(super) fn on_stt(&mut self, ev: SttEvent) {
        // Any word from STT shows it is alive.
        self.stt_deadline = None;
        match ev {
            SttEvent::Interim { text, .. } => {
                if !text.is_empty() {
                    self.publish(SessionEvent::Transcript { text, is_final: false });
                }
            }
            SttEvent::Final { text, speech_final, .. } => {
                if !text.trim().is_empty() {
                    if !self.user_buf.is_empty() {
                        self.user_buf.push(' ');
                    }
                    self.user_buf.push_str(text.trim());
                    self.publish(SessionEvent::Transcript { text, is_final: true });
                    self.last_final_at = Some(Instant::now());
                }
                if speech_final {
                    self.endpoint_seen = true;
                }
                self.maybe_end_user_turn();
            }
            SttEvent::UtteranceEnd { .. } => {
                self.endpoint_seen = true;
                self.maybe_end_user_turn();
            }
            SttEvent::SpeechStarted { .. } => {}
            SttEvent::Usage { audio_ms, estimated } => self.meter.raise_to(LineId::Stt, audio_ms, estimated),
            SttEvent::Error(_) => {}
        }
    }

    pub(super) async fn on_control(&mut self, c: Control) {
        match c {
            Control::SpeechStart { .. } if self.closing.is_some() => self.caller_speaking = true,
            Control::SpeechStart { at } => {
                self.caller_speaking = true;
                self.endpoint_seen = false;
                if let Some(a) = self.agent.take() {
                    self.interrupt(a, at).await;
                }
            }
            Control::SpeechEnd => {
                self.caller_speaking = false;
                if self.closing.is_none() {
                    self.stt_deadline = Some(Instant::now() + self.steps.stt_result);
                }
                self.maybe_end_user_turn();
            }
            Control::Mark(name) => tracing::debug!(%name, "gateway played up to mark"),
            Control::Dtmf(digit) => self.publish(SessionEvent::Dtmf { digit }),
        }
    }

    /// End of the caller's turn: STT said the speech is final and local VAD agrees.
    pub(super) fn maybe_end_user_turn(&mut self) {
        if self.closing.is_some()
            || !self.endpoint_seen
            || self.caller_speaking
            || self.agent.is_some()
            || self.user_buf.trim().is_empty()
        {
            return;
        }
        self.endpoint_seen = false;
        let text = std::mem::take(&mut self.user_buf);
        self.start_agent_turn(text);
    }
}
