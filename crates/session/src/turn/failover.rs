//! Failover: the session's fallback providers, and moving a failing service to the next
//! one within the same turn.

use super::*;
use crate::Providers;
use std::collections::VecDeque;

/// The fallback providers of one session, resolved with their keys at session start, each
/// paired with its adapter and taken in the agent's order when a provider fails.
pub(crate) struct Failover {
    pub stt: VecDeque<(ServicePlan, Arc<dyn stt::Stt>)>,
    pub llm: VecDeque<(ServicePlan, Arc<dyn llm::Llm>)>,
    pub tts: VecDeque<(ServicePlan, Arc<dyn tts::Tts>)>,
}

impl Failover {
    /// A fallback whose provider this build has no adapter for is left out.
    pub(crate) fn from_plan(plan: &SessionPlan, providers: &Providers) -> Self {
        fn pair<A: ?Sized>(
            plans: &[ServicePlan],
            adapters: &std::collections::HashMap<String, Arc<A>>,
        ) -> VecDeque<(ServicePlan, Arc<A>)> {
            plans.iter().filter_map(|p| adapters.get(&p.provider).map(|a| (p.clone(), a.clone()))).collect()
        }
        Self {
            stt: pair(&plan.fallbacks.stt, &providers.stt),
            llm: pair(&plan.fallbacks.llm, &providers.llm),
            tts: pair(&plan.fallbacks.tts, &providers.tts),
        }
    }
}

impl TurnManager {
    /// Move STT to the next fallback: bill the failed stream's audio (counted locally), connect
    /// the next provider and hand its sender to the gateway reader. `false` when none is left
    /// or every remaining one fails to connect.
    pub(super) async fn fail_over_stt(&mut self, code: &str) -> bool {
        trace::fail(&mut self.stt_span, code);
        while let Some((plan, adapter)) = self.failover.stt.pop_front() {
            let sent = self.stt_audio_ms.load(Ordering::Relaxed);
            self.meter.raise_to(LineId::Stt, sent.saturating_sub(self.stt_audio_base), true);
            let req = crate::open::stt_request(&plan, self.stt_rate);
            let mut span = OutcomeSpan::provider(&self.span, Service::Stt, &plan);
            match tokio::time::timeout(self.steps.stt_connect, adapter.connect(req)).await {
                Ok(Ok(stream)) => {
                    self.stt_span = Some(span);
                    self.switch_meter(Service::Stt, &plan);
                    self.stt_audio_base = sent;
                    let _ = self.stt_switch.send(stream.audio.clone());
                    let old = std::mem::replace(&mut self.stt, stream);
                    drop(old);
                    self.announce_failover(Service::Stt, &plan, code);
                    self.stt_plan = plan;
                    return true;
                }
                Ok(Err(e)) => {
                    span.fail(e.code());
                    self.provider_failed(Service::Stt, e.code(), &format!("fallback {}: {e}", plan.provider))
                }
                Err(_) => {
                    span.fail("stt_timeout");
                    self.provider_failed(
                        Service::Stt,
                        "stt_timeout",
                        &format!("fallback {} did not answer", plan.provider),
                    )
                }
            }
        }
        false
    }

    /// `true` when `service` has a fallback left: the main loop moves to it next, so the caller
    /// must not end the turn.
    pub(super) fn pending_failover(&mut self, service: Service, code: &str) -> bool {
        let left = match service {
            Service::Llm => !self.failover.llm.is_empty(),
            Service::Tts => !self.failover.tts.is_empty(),
            _ => false,
        };
        if left && self.agent.is_some() {
            self.failover_due = Some((service, code.to_string()));
        }
        left && self.agent.is_some()
    }

    pub(super) fn announce_failover(&self, service: Service, to: &ServicePlan, code: &str) {
        let from = match service {
            Service::Stt => &self.stt_plan.provider,
            Service::Llm => &self.llm_plan.provider,
            _ => &self.tts_plan.provider,
        };
        let service = service.as_str();
        tracing::warn!(service, from = %from, to = %to.provider, credential = %to.credential.id, code, "provider failed; moved to the fallback");
        metrics::counter!(m::PROVIDER_ERRORS, "service" => service.to_string(), "code" => "failover").increment(1);
        let ev = SessionEvent::Failover {
            service: service.to_string(),
            from: from.clone(),
            to: to.provider.clone(),
            code: code.to_string(),
        };
        self.publish(ev.clone());
        let _ = self.writer.try_send(WriterCmd::Event(ev));
    }

    /// Move the LLM to the next fallback and ask it the same thing. What the failed provider
    /// generated is billed (its count if it sent one, else estimated); the text already spoken
    /// stays spoken and is skipped where the fallback's reply repeats it. `false` when none is left.
    pub(super) async fn fail_over_llm(&mut self, code: &str) -> bool {
        let Some((plan, adapter)) = self.failover.llm.pop_front() else { return false };
        let Some(a) = self.agent.as_mut() else { return false };
        if !a.llm_usage_seen {
            let (i, o) = (estimate_tokens(a.input_chars), estimate_tokens(a.text.len()));
            self.meter.add(LineId::LlmIn, i, true);
            self.meter.add(LineId::LlmOut, o, true);
        }
        self.switch_meter(Service::Llm, &plan);
        self.announce_failover(Service::Llm, &plan, code);
        self.llm = adapter;
        self.llm_plan = plan;
        let start = self.llm_start(match self.agent.as_ref() {
            Some(a) => a.messages.clone(),
            None => return false,
        });
        if let Some(a) = self.agent.as_mut() {
            a.llm_span = Some(OutcomeSpan::provider(a.span.span(), Service::Llm, &self.llm_plan));
            a.llm_usage_seen = false;
            a.llm_rx = None;
            a.llm_start = Some(start);
            // Only this round's text can be repeated; the failed provider's calls are asked again.
            a.skip = a.text.get(a.tool.text_start()..).unwrap_or_default().to_string();
            a.tool.forget_calls();
            a.llm_requested_at = Instant::now();
            a.llm_deadline = Some(Instant::now() + self.steps.llm_first_token);
        }
        true
    }

    /// Move TTS to the next fallback: reconnect and resend the text not yet voiced. `false`
    /// when none is left.
    pub(super) async fn fail_over_tts(&mut self, code: &str) -> bool {
        let Some((plan, adapter)) = self.failover.tts.pop_front() else { return false };
        self.switch_meter(Service::Tts, &plan);
        self.announce_failover(Service::Tts, &plan, code);
        self.tts = adapter;
        self.tts_plan = plan;
        let connect = self.tts_connect();
        let Some(a) = self.agent.as_mut() else { return true };
        a.tts_span = Some(OutcomeSpan::provider(a.span.span(), Service::Tts, &self.tts_plan));
        let voiced = a.aligned.len();
        let mut rest: String = a.tts_sent.chars().skip(voiced).collect();
        // Text still queued for a stream that never connected goes to the fallback too.
        for input in a.pending.drain(..) {
            if let TtsInput::Text(t) = input {
                rest.push_str(&t);
            }
        }
        a.tts_sent = a.tts_sent.chars().take(voiced).collect();
        a.tts_tx = None;
        a.tts_rx = None;
        a.tts_done = false;
        a.tts_connect = Some(connect);
        a.tts_deadline = Some(Instant::now() + self.steps.tts_connect);
        if !rest.is_empty() {
            a.pending.push(TtsInput::Text(rest));
        }
        if a.llm_done {
            a.pending.extend([TtsInput::Flush, TtsInput::Close]);
        }
        true
    }

    /// Carry out a failover a sync handler decided (LLM or TTS), within the same turn.
    pub(super) async fn run_due_failover(&mut self) {
        match self.failover_due.take() {
            Some((Service::Llm, code)) => {
                self.fail_over_llm(&code).await;
            }
            Some((_, code)) => {
                self.fail_over_tts(&code).await;
            }
            None => {}
        }
    }
}
