//! Metering from the turn loop: checkpoints, the mid-call funds check and the closing line,
//! and the final usage when the session ends. The turn loop only prices and sends; the
//! session's ledger task does every store access ([`crate::ledger`]).

use super::*;

impl TurnManager {
    /// `end_call` policy: when the payer has neither credits nor wallet left (beyond its
    /// allowed negative balance), the agent says a closing line and hangs up. Orgs that are not
    /// in the store (the sandbox's own agent) are not limited.
    /// The check runs in the ledger task; [`Self::on_low_funds`] hears the answer.
    pub(super) fn check_funds(&mut self) {
        if self.closing.is_some() {
            return;
        }
        let interval_ms = i64::try_from(self.checkpoint_every.as_millis()).unwrap_or(i64::MAX);
        let reserve = billing::hold::floor_reserve(&self.plan, interval_ms, CLOSING_LINE.len());
        self.ledger.check_funds(reserve, billing::hold::slice_estimate(&self.plan));
    }

    /// The ledger found less than the reserve available: say goodbye, once.
    pub(super) async fn on_low_funds(&mut self, available: i64) {
        if self.closing.is_none() {
            tracing::warn!(org = %self.plan.payer_org_id, available, "funds about to run out mid-call: saying goodbye");
            self.say_closing_line(CLOSING_LINE, EndReason::FundsExhausted).await;
        }
    }

    /// Fail a service's metering over to `plan`, sending what the old provider served.
    pub(super) fn switch_meter(&mut self, service: Service, plan: &ServicePlan) {
        self.meter.switch_service(service, plan, now_ms());
        self.ledger.settle(self.meter.take_records());
    }

    /// Cut whatever the agent is saying, say `line`, then hang up with `reason`.
    pub(super) async fn say_closing_line(&mut self, line: &str, reason: EndReason) {
        self.closing_reason = reason;
        if let Some(a) = self.agent.take() {
            if a.audio_started {
                let (tx, _rx) = oneshot::channel();
                let _ = self.writer.send(WriterCmd::Clear { turn: a.id, reply: tx }).await;
            }
            self.abandon(a, "cut");
        }
        let id = self.say_line(line);
        self.closing = Some(id);
    }

    /// Say `line` as the agent's turn, without the LLM; returns the turn's id.
    pub(super) fn say_line(&mut self, line: &str) -> u64 {
        let id = self.next_turn;
        self.next_turn += 1;
        let tts_connect = self.tts_connect();
        let span = OutcomeSpan::turn(&self.span, id, "line");
        let tts_span = OutcomeSpan::provider(span.span(), Service::Tts, &self.tts_plan);
        self.agent = Some(AgentTurn {
            id,
            llm_span: None,
            tts_span: Some(tts_span),
            span,
            user_text: String::new(),
            llm_start: None,
            llm_rx: None,
            tts_connect: Some(tts_connect),
            tts_tx: None,
            tts_rx: None,
            pending: vec![TtsInput::Text(line.to_string()), TtsInput::Flush, TtsInput::Close],
            chunker: Chunker::new(),
            text: line.to_string(),
            aligned: Vec::new(),
            audio_ms: 0,
            llm_done: true,
            tts_done: false,
            llm_usage_seen: true,
            audio_started: false,
            input_chars: 0,
            llm_requested_at: Instant::now(),
            messages: Arc::new(Vec::new()),
            tool: Default::default(),
            skip: String::new(),
            tts_sent: String::new(),
            first_token_at: None,
            first_text_at: Some(Instant::now()),
            first_audio_at: None,
            llm_deadline: None,
            tts_deadline: Some(Instant::now() + self.steps.tts_connect),
        });
        self.publish(SessionEvent::Agent { text: line.to_string(), turn: id });
        id
    }

    pub(super) fn checkpoint(&mut self) {
        let sent = self.stt_audio_ms.load(Ordering::Relaxed).saturating_sub(self.stt_audio_base);
        self.meter.raise_to(LineId::Stt, sent, true);
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.meter.raise_to(LineId::Telephony, elapsed, false);
        self.meter.raise_to(LineId::Platform, elapsed, false);
        self.meter.checkpoint(now_ms());
        self.ledger.settle(self.meter.take_records());
    }

    /// Session over: drop the agent turn, close STT and wait briefly for its usage summary.
    /// A provider's own closing figure settles the STT line, up or down.
    pub(super) async fn finish(&mut self) {
        if let Some(a) = self.agent.take() {
            self.abandon(a, "ended");
        }
        let _ = self.stt.audio.send(SttInput::Close).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            match tokio::time::timeout_at(deadline, self.stt.events.recv()).await {
                Ok(Some(SttEvent::Usage { audio_ms, estimated: false })) => {
                    trace::end(&mut self.stt_span, "ok");
                    self.meter.reconcile(LineId::Stt, audio_ms);
                    break;
                }
                Ok(Some(SttEvent::Usage { audio_ms, estimated: true })) => {
                    trace::end(&mut self.stt_span, "ok");
                    self.meter.raise_to(LineId::Stt, audio_ms, true);
                    break;
                }
                Ok(Some(SttEvent::Final { text, .. })) if !text.is_empty() => {
                    self.publish(SessionEvent::Transcript { text, is_final: true });
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.checkpoint();
    }
}
