//! The turn manager: decides when the caller's turn ends, runs the agent's reply
//! (LLM → chunker → TTS → writer) and handles barge-in.
//!
//! One task per session. It never blocks on a provider handshake: LLM request and TTS connect
//! are futures polled in the same `select!` as caller events, so barge-in is always heard.

use crate::chunker::Chunker;
use crate::failover::Failover;
use crate::meter::{LineId, Meter};
use crate::output::{WriterCmd, WriterEvent};
use crate::{metrics as m, SessionEvent};
use billing::{Service, ServicePlan, SessionPlan};
use futures::future::BoxFuture;
use llm::{Llm, LlmError, LlmEvent, LlmRequest, Message, Role};
use media::Resampler;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stt::{SttEvent, SttInput, SttRequest, SttStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tts::{Tts, TtsError, TtsEvent, TtsInput, TtsRequest, TtsStream};

/// Caller-side signals from the gateway reader.
#[derive(Debug)]
pub(crate) enum Control {
    SpeechStart { at: Instant },
    SpeechEnd,
    Mark(String),
    Dtmf(String),
}

/// Why the turn manager stopped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EndReason {
    Hangup,
    /// The org ran out of funds mid-call: the agent said its closing line and hung up.
    FundsExhausted,
    /// The server is shutting down: the agent said its closing line and hung up.
    ServerShutdown,
    ProviderFailed {
        code: String,
        message: String,
    },
}

pub(crate) struct AgentTurn {
    id: u64,
    user_text: String,
    llm_start: Option<BoxFuture<'static, Result<mpsc::Receiver<LlmEvent>, LlmError>>>,
    llm_rx: Option<mpsc::Receiver<LlmEvent>>,
    tts_connect: Option<BoxFuture<'static, Result<TtsStream, TtsError>>>,
    tts_tx: Option<mpsc::Sender<TtsInput>>,
    tts_rx: Option<mpsc::Receiver<TtsEvent>>,
    pending: Vec<TtsInput>,
    chunker: Chunker,
    /// Full reply text streamed so far.
    text: String,
    /// Characters of the reply with the start of each in the turn's audio (ms).
    aligned: Vec<(char, u32)>,
    audio_ms: u64,
    llm_done: bool,
    tts_done: bool,
    llm_usage_seen: bool,
    audio_started: bool,
    input_chars: usize,
    llm_requested_at: Instant,
    /// The request, kept to ask a fallback LLM the same thing.
    messages: Arc<Vec<Message>>,
    /// After an LLM failover: the reply text already spoken, skipped where the fallback repeats it.
    skip: String,
    /// Characters handed to TTS so far (resent from the last voiced one after a TTS failover).
    tts_sent: String,
    first_token_at: Option<Instant>,
    first_text_at: Option<Instant>,
    first_audio_at: Option<Instant>,
}

enum Wake {
    Cancelled,
    Shutdown,
    Stt(Option<SttEvent>),
    Control(Control),
    LlmStarted(Result<mpsc::Receiver<LlmEvent>, LlmError>),
    Llm(Option<LlmEvent>),
    TtsConnected(Result<TtsStream, TtsError>),
    Tts(Option<TtsEvent>),
    Writer(WriterEvent),
    Checkpoint,
}

pub(crate) struct TurnManager {
    pub(crate) plan: Arc<SessionPlan>,
    pub(crate) llm: Arc<dyn Llm>,
    pub(crate) tts: Arc<dyn Tts>,
    pub(crate) tts_rate: u32,
    pub(crate) stt: SttStream,
    pub(crate) meter: Meter,
    pub(crate) events: broadcast::Sender<SessionEvent>,
    pub(crate) writer: mpsc::Sender<WriterCmd>,
    pub(crate) writer_events: mpsc::Receiver<WriterEvent>,
    pub(crate) control: mpsc::Receiver<Control>,
    pub(crate) stt_audio_ms: Arc<AtomicU64>,
    pub(crate) started: Instant,
    pub(crate) checkpoint_every: Duration,
    pub(crate) resampler: Resampler,
    pub(crate) conversation: Vec<Message>,
    pub(crate) user_buf: String,
    pub(crate) caller_speaking: bool,
    pub(crate) endpoint_seen: bool,
    pub(crate) agent: Option<AgentTurn>,
    pub(crate) next_turn: u64,
    pub(crate) last_final_at: Option<Instant>,
    pub(crate) pcm: Vec<i16>,
    pub(crate) out: Vec<i16>,
    /// For the funds check at each checkpoint.
    pub(crate) store: Arc<dyn billing::store::Store>,
    /// Set once funds ran out: the id of the turn speaking the closing line.
    pub(crate) closing: Option<u64>,
    /// The closing line has been played: end the session.
    pub(crate) hang_up: bool,
    /// Why the closing line is spoken.
    pub(crate) closing_reason: EndReason,
    /// Fires when the server, draining, ends its remaining calls.
    pub(crate) shutdown: CancellationToken,
    /// The providers serving each service now (a fallback after a failover).
    pub(crate) stt_plan: ServicePlan,
    pub(crate) llm_plan: ServicePlan,
    pub(crate) tts_plan: ServicePlan,
    pub(crate) failover: Failover,
    /// Hands the gateway reader the audio sender of a fallback STT stream.
    pub(crate) stt_switch: watch::Sender<mpsc::Sender<SttInput>>,
    pub(crate) stt_rate: u32,
    /// Audio already sent when the current STT stream started (its usage counts from here).
    pub(crate) stt_audio_base: u64,
    /// A failover decided in a sync handler, carried out by the main loop next.
    pub(crate) failover_due: Option<(Service, String)>,
}

/// What the agent says before hanging up on an org without funds (`end_call` policy).
const CLOSING_LINE: &str = "I am sorry, but this call has to end now because the account is out of funds. Goodbye.";
const SHUTDOWN_LINE: &str = "I am sorry, but I have to end this call now. Please call again. Goodbye.";

async fn opt_recv<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn opt_fut<T>(f: &mut Option<BoxFuture<'static, T>>) -> T {
    match f {
        Some(fut) => fut.await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Conservative token estimate when a stream ended without provider usage: ~3 chars a token.
fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(3) as u64
}

impl TurnManager {
    fn publish(&self, ev: SessionEvent) {
        let _ = self.events.send(ev.clone());
        // The client websocket carries events in-band; the writer drops them for Twilio.
        let _ = self.writer.try_send(WriterCmd::Event(ev));
    }

    fn error(&self, service: &'static str, code: &str, message: String) {
        self.provider_failed(service, code, &message);
        self.publish(SessionEvent::Error { code: code.to_string(), message });
    }

    /// A provider failure the call survives (a fallback takes over): logged and counted, but
    /// not a session error.
    fn provider_failed(&self, service: &'static str, code: &str, message: &str) {
        tracing::warn!(service, code, %message, "provider error");
        metrics::counter!(m::PROVIDER_ERRORS, "service" => service, "code" => code.to_string()).increment(1);
    }

    pub(crate) async fn run(mut self, cancel: CancellationToken) -> (Meter, EndReason) {
        let mut tick = tokio::time::interval(self.checkpoint_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut reason = EndReason::Hangup;
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let shutdown = self.shutdown.clone();
        let shutdown = shutdown.cancelled();
        tokio::pin!(shutdown);
        loop {
            let wake = {
                let mut none_ls = None;
                let mut none_lr = None;
                let mut none_tc = None;
                let mut none_tr = None;
                let (ls, lr, tc, tr) = match self.agent.as_mut() {
                    Some(a) => (&mut a.llm_start, &mut a.llm_rx, &mut a.tts_connect, &mut a.tts_rx),
                    None => (&mut none_ls, &mut none_lr, &mut none_tc, &mut none_tr),
                };
                tokio::select! {
                    biased;
                    _ = &mut cancelled => Wake::Cancelled,
                    _ = &mut shutdown, if self.closing.is_none() => Wake::Shutdown,
                    Some(c) = self.control.recv() => Wake::Control(c),
                    ev = self.stt.events.recv() => Wake::Stt(ev),
                    r = opt_fut(ls) => Wake::LlmStarted(r),
                    ev = opt_recv(lr) => Wake::Llm(ev),
                    r = opt_fut(tc) => Wake::TtsConnected(r),
                    ev = opt_recv(tr) => Wake::Tts(ev),
                    Some(ev) = self.writer_events.recv() => Wake::Writer(ev),
                    _ = tick.tick() => Wake::Checkpoint,
                }
            };
            match wake {
                Wake::Cancelled => break,
                Wake::Shutdown => {
                    tracing::info!("server draining: saying goodbye");
                    self.say_closing_line(SHUTDOWN_LINE, EndReason::ServerShutdown).await;
                }
                Wake::Stt(None) => {
                    if self.fail_over_stt("stt_closed").await {
                        continue;
                    }
                    reason = EndReason::ProviderFailed {
                        code: "stt_closed".into(),
                        message: format!("{} closed the transcription stream", self.stt_plan.provider),
                    };
                    break;
                }
                Wake::Stt(Some(SttEvent::Error(e))) => {
                    self.provider_failed("stt", e.code(), &e.to_string());
                    if self.fail_over_stt(e.code()).await {
                        continue;
                    }
                    self.publish(SessionEvent::Error { code: e.code().to_string(), message: e.to_string() });
                    reason = EndReason::ProviderFailed { code: e.code().to_string(), message: e.to_string() };
                    break;
                }
                Wake::Stt(Some(ev)) => self.on_stt(ev),
                Wake::Control(c) => self.on_control(c).await,
                Wake::LlmStarted(r) => self.on_llm_started(r),
                Wake::Llm(ev) => self.on_llm(ev),
                Wake::TtsConnected(r) => self.on_tts_connected(r),
                Wake::Tts(ev) => self.on_tts(ev),
                Wake::Writer(ev) => self.on_writer(ev),
                Wake::Checkpoint => {
                    self.checkpoint().await;
                    self.check_funds().await;
                }
            }
            if let Some((service, code)) = self.failover_due.take() {
                match service {
                    Service::Llm => {
                        self.fail_over_llm(&code).await;
                    }
                    _ => {
                        self.fail_over_tts(&code).await;
                    }
                }
            }
            if self.hang_up {
                reason = self.closing_reason.clone();
                // Stop the gateway reader too: the session ends here.
                cancel.cancel();
                break;
            }
        }
        self.finish().await;
        (self.meter, reason)
    }

    /// `end_call` policy: when the payer has neither credits nor wallet left (beyond its
    /// allowed negative balance), the agent says a closing line and hangs up. Orgs that are not
    /// in the store (the sandbox's own agent) are not limited.
    async fn check_funds(&mut self) {
        if self.closing.is_some() {
            return;
        }
        let session = self.plan.session_id.clone();
        let Ok(funds) = billing::store::load_funds(self.store.as_ref(), &self.plan.payer_org_id, Some(&session)).await
        else {
            return;
        };
        let interval_ms = i64::try_from(self.checkpoint_every.as_millis()).unwrap_or(i64::MAX);
        let reserve = billing::hold::floor_reserve(&self.plan, interval_ms, CLOSING_LINE.len());
        if funds.available() >= reserve {
            // Extend the hold for the next slice.
            let hold = billing::hold::slice_estimate(&self.plan);
            if let Err(e) = self.store.put_hold(&session, &self.plan.payer_org_id, hold).await {
                tracing::warn!(error = %e, "cannot extend the session's hold");
            }
            return;
        }
        tracing::warn!(org = %self.plan.payer_org_id, available = funds.available(), reserve, "funds about to run out mid-call: saying goodbye");
        self.say_closing_line(CLOSING_LINE, EndReason::FundsExhausted).await;
    }

    /// Cut whatever the agent is saying, say `line`, then hang up with `reason`.
    async fn say_closing_line(&mut self, line: &str, reason: EndReason) {
        self.closing_reason = reason;
        if let Some(a) = self.agent.take() {
            if a.audio_started {
                let (tx, _rx) = oneshot::channel();
                let _ = self.writer.send(WriterCmd::Clear { turn: a.id, reply: tx }).await;
            }
            self.abandon(a);
        }
        let id = self.next_turn;
        self.next_turn += 1;
        let tts_connect = self.tts_connect();
        self.agent = Some(AgentTurn {
            id,
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
            skip: String::new(),
            tts_sent: String::new(),
            first_token_at: None,
            first_text_at: Some(Instant::now()),
            first_audio_at: None,
        });
        self.closing = Some(id);
        self.publish(SessionEvent::Agent { text: line.to_string(), turn: id });
    }

    /// Open the session's TTS stream with the plan's key, as a future polled in the main loop.
    fn tts_connect(&self) -> BoxFuture<'static, Result<TtsStream, TtsError>> {
        let tts = self.tts.clone();
        let plan = self.tts_plan.clone();
        let rate = self.tts_rate;
        Box::pin(async move {
            tts.connect(TtsRequest {
                base_url: &plan.base_url,
                key: &plan.credential.key,
                model: &plan.model,
                voice: &plan.voice,
                sample_rate: rate,
            })
            .await
        })
    }

    async fn checkpoint(&mut self) {
        let sent = self.stt_audio_ms.load(Ordering::Relaxed).saturating_sub(self.stt_audio_base);
        self.meter.raise_to(LineId::Stt, sent, true);
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.meter.raise_to(LineId::Telephony, elapsed, false);
        self.meter.raise_to(LineId::Platform, elapsed, false);
        self.meter.checkpoint(now_ms()).await;
    }

    /// Session over: drop the agent turn, close STT and wait briefly for its usage summary.
    async fn finish(&mut self) {
        if let Some(a) = self.agent.take() {
            self.abandon(a);
        }
        let _ = self.stt.audio.send(SttInput::Close).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            match tokio::time::timeout_at(deadline, self.stt.events.recv()).await {
                Ok(Some(SttEvent::Usage { audio_ms, estimated })) => {
                    self.meter.raise_to(LineId::Stt, audio_ms, estimated);
                    break;
                }
                Ok(Some(SttEvent::Final { text, .. })) if !text.is_empty() => {
                    self.publish(SessionEvent::Transcript { text, is_final: true });
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.checkpoint().await;
    }

    fn on_stt(&mut self, ev: SttEvent) {
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

    async fn on_control(&mut self, c: Control) {
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
                self.maybe_end_user_turn();
            }
            Control::Mark(name) => tracing::debug!(%name, "gateway played up to mark"),
            Control::Dtmf(digit) => self.publish(SessionEvent::Dtmf { digit }),
        }
    }

    /// End of the caller's turn: STT said the speech is final and local VAD agrees.
    fn maybe_end_user_turn(&mut self) {
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

    fn start_agent_turn(&mut self, user_text: String) {
        self.conversation.push(Message { role: Role::User, content: user_text.clone() });
        let id = self.next_turn;
        self.next_turn += 1;
        let mut messages = Vec::with_capacity(self.conversation.len() + 1);
        messages.push(Message { role: Role::System, content: self.plan.prompt.clone() });
        messages.extend(self.conversation.iter().cloned());
        let input_chars = messages.iter().map(|m| m.content.len() + 12).sum();
        let messages = Arc::new(messages);
        let llm_start = self.llm_start(messages.clone());
        if let Some(t) = self.last_final_at {
            metrics::histogram!(m::HOP, "hop" => "stt_final_to_llm_request").record(t.elapsed().as_secs_f64());
        }
        let tts_connect = self.tts_connect();
        self.agent = Some(AgentTurn {
            id,
            user_text,
            llm_start: Some(llm_start),
            llm_rx: None,
            tts_connect: Some(tts_connect),
            tts_tx: None,
            tts_rx: None,
            pending: Vec::new(),
            chunker: Chunker::new(),
            text: String::new(),
            aligned: Vec::new(),
            audio_ms: 0,
            llm_done: false,
            tts_done: false,
            llm_usage_seen: false,
            audio_started: false,
            input_chars,
            llm_requested_at: Instant::now(),
            messages,
            skip: String::new(),
            tts_sent: String::new(),
            first_token_at: None,
            first_text_at: None,
            first_audio_at: None,
        });
    }

    /// Ask the current LLM for a reply, as a future polled in the main loop.
    fn llm_start(&self, messages: Arc<Vec<Message>>) -> BoxFuture<'static, Result<mpsc::Receiver<LlmEvent>, LlmError>> {
        let llm = self.llm.clone();
        let plan = self.llm_plan.clone();
        Box::pin(async move {
            llm.stream(LlmRequest {
                base_url: &plan.base_url,
                key: &plan.credential.key,
                model: &plan.model,
                messages: &messages,
                max_tokens: Some(400),
            })
            .await
        })
    }

    /// Move STT to the next fallback: bill the failed stream's audio (counted locally), connect
    /// the next provider and hand its sender to the gateway reader. `false` when none is left
    /// or every remaining one fails to connect.
    async fn fail_over_stt(&mut self, code: &str) -> bool {
        while let Some((plan, adapter)) = self.failover.stt.pop_front() {
            let sent = self.stt_audio_ms.load(Ordering::Relaxed);
            self.meter.raise_to(LineId::Stt, sent.saturating_sub(self.stt_audio_base), true);
            let req = SttRequest {
                base_url: &plan.base_url,
                key: &plan.credential.key,
                model: &plan.model,
                sample_rate: self.stt_rate,
                language: "en",
            };
            match tokio::time::timeout(Duration::from_secs(10), adapter.connect(req)).await {
                Ok(Ok(stream)) => {
                    self.meter.switch_service(Service::Stt, &plan, now_ms()).await;
                    self.stt_audio_base = sent;
                    let _ = self.stt_switch.send(stream.audio.clone());
                    let old = std::mem::replace(&mut self.stt, stream);
                    drop(old);
                    self.announce_failover("stt", &plan, code);
                    self.stt_plan = plan;
                    return true;
                }
                Ok(Err(e)) => self.provider_failed("stt", e.code(), &format!("fallback {}: {e}", plan.provider)),
                Err(_) => {
                    self.provider_failed("stt", "stt_timeout", &format!("fallback {} did not answer", plan.provider))
                }
            }
        }
        false
    }

    /// `true` when `service` has a fallback left: the main loop moves to it next, so the caller
    /// must not end the turn.
    fn pending_failover(&mut self, service: Service, code: &str) -> bool {
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

    fn announce_failover(&self, service: &str, to: &ServicePlan, code: &str) {
        let from = match service {
            "stt" => &self.stt_plan.provider,
            "llm" => &self.llm_plan.provider,
            _ => &self.tts_plan.provider,
        };
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
    async fn fail_over_llm(&mut self, code: &str) -> bool {
        let Some((plan, adapter)) = self.failover.llm.pop_front() else { return false };
        let Some(a) = self.agent.as_mut() else { return false };
        if !a.llm_usage_seen {
            let (i, o) = (estimate_tokens(a.input_chars), estimate_tokens(a.text.len()));
            self.meter.add(LineId::LlmIn, i, true);
            self.meter.add(LineId::LlmOut, o, true);
        }
        self.meter.switch_service(Service::Llm, &plan, now_ms()).await;
        self.announce_failover("llm", &plan, code);
        self.llm = adapter;
        self.llm_plan = plan;
        let start = self.llm_start(match self.agent.as_ref() {
            Some(a) => a.messages.clone(),
            None => return false,
        });
        if let Some(a) = self.agent.as_mut() {
            a.llm_usage_seen = false;
            a.llm_rx = None;
            a.llm_start = Some(start);
            a.skip = a.text.clone();
            a.llm_requested_at = Instant::now();
        }
        true
    }

    /// Move TTS to the next fallback: reconnect and resend the text not yet voiced. `false`
    /// when none is left.
    async fn fail_over_tts(&mut self, code: &str) -> bool {
        let Some((plan, adapter)) = self.failover.tts.pop_front() else { return false };
        self.meter.switch_service(Service::Tts, &plan, now_ms()).await;
        self.announce_failover("tts", &plan, code);
        self.tts = adapter;
        self.tts_plan = plan;
        let connect = self.tts_connect();
        let Some(a) = self.agent.as_mut() else { return true };
        let voiced = a.aligned.len();
        let rest: String = a.tts_sent.chars().skip(voiced).collect();
        a.tts_sent = a.tts_sent.chars().take(voiced).collect();
        a.tts_tx = None;
        a.tts_rx = None;
        a.tts_done = false;
        a.tts_connect = Some(connect);
        a.pending.clear();
        if !rest.is_empty() {
            a.pending.push(TtsInput::Text(rest));
        }
        if a.llm_done {
            a.pending.extend([TtsInput::Flush, TtsInput::Close]);
        }
        true
    }

    fn on_llm_started(&mut self, r: Result<mpsc::Receiver<LlmEvent>, LlmError>) {
        let Some(a) = self.agent.as_mut() else { return };
        a.llm_start = None;
        match r {
            Ok(rx) => a.llm_rx = Some(rx),
            Err(e) => {
                if let Some(a) = self.agent.as_mut() {
                    // Refused before any token: nothing to bill for the failed provider.
                    a.llm_usage_seen = true;
                }
                if self.pending_failover(Service::Llm, e.code()) {
                    self.provider_failed("llm", e.code(), &e.to_string());
                    return;
                }
                self.error("llm", e.code(), e.to_string());
                if let Some(a) = self.agent.take() {
                    // The request was refused: no tokens were generated, nothing to bill.
                    let mut a = a;
                    a.llm_usage_seen = true;
                    self.abandon(a);
                }
            }
        }
    }

    fn on_llm(&mut self, ev: Option<LlmEvent>) {
        let Some(a) = self.agent.as_mut() else { return };
        match ev {
            Some(LlmEvent::Token(t)) => {
                if a.first_token_at.is_none() {
                    a.first_token_at = Some(Instant::now());
                    metrics::histogram!(m::TIME_TO_FIRST, "service" => "llm", "provider" => self.plan.llm.provider.clone())
                        .record(a.llm_requested_at.elapsed().as_secs_f64());
                }
                let t = if a.skip.is_empty() {
                    t
                } else if let Some(rest) = a.skip.strip_prefix(t.as_str()) {
                    // The fallback repeats what was already spoken.
                    a.skip = rest.to_string();
                    return;
                } else {
                    a.skip.clear();
                    t
                };
                a.text.push_str(&t);
                for chunk in a.chunker.push(&t) {
                    self.speak(chunk);
                }
            }
            Some(LlmEvent::ToolCall(call)) => {
                tracing::info!(tool = %call.name, "tool calls are not supported yet; ignored");
            }
            Some(LlmEvent::Usage { input_tokens, output_tokens, estimated }) => {
                a.llm_usage_seen = true;
                self.meter.add(LineId::LlmIn, input_tokens, estimated);
                self.meter.add(LineId::LlmOut, output_tokens, estimated);
            }
            Some(LlmEvent::Error(e)) => {
                if self.pending_failover(Service::Llm, e.code()) {
                    self.provider_failed("llm", e.code(), &e.to_string());
                } else {
                    self.error("llm", e.code(), e.to_string());
                    self.llm_finished();
                }
            }
            Some(LlmEvent::Done { .. }) | None => self.llm_finished(),
        }
    }

    /// The reply is complete: speak what is left and tell TTS to finish.
    fn llm_finished(&mut self) {
        let Some(a) = self.agent.as_mut() else { return };
        if a.llm_done {
            return;
        }
        a.llm_done = true;
        a.llm_rx = None;
        if let Some(rest) = a.chunker.finish() {
            self.speak(rest);
        }
        self.tts_send(TtsInput::Flush);
        self.tts_send(TtsInput::Close);
        if let Some(a) = self.agent.as_mut() {
            if !a.llm_usage_seen {
                a.llm_usage_seen = true;
                let (i, o) = (estimate_tokens(a.input_chars), estimate_tokens(a.text.len()));
                self.meter.add(LineId::LlmIn, i, true);
                self.meter.add(LineId::LlmOut, o, true);
            }
            if a.text.trim().is_empty() {
                // Nothing to say: the turn ends here.
                let turn = a.id;
                let _ = self.writer.try_send(WriterCmd::EndOfTurn { turn });
            }
        }
    }

    fn speak(&mut self, chunk: String) {
        let Some(a) = self.agent.as_mut() else { return };
        if a.first_text_at.is_none() {
            a.first_text_at = Some(Instant::now());
            if let Some(t) = a.first_token_at {
                metrics::histogram!(m::HOP, "hop" => "llm_first_token_to_tts_text").record(t.elapsed().as_secs_f64());
            }
        }
        let turn = a.id;
        self.publish(SessionEvent::Agent { text: chunk.clone(), turn });
        self.tts_send(TtsInput::Text(chunk));
    }

    /// Send to TTS, or queue until it is connected. Characters are metered as they are sent.
    fn tts_send(&mut self, input: TtsInput) {
        let Some(a) = self.agent.as_mut() else { return };
        let Some(tx) = a.tts_tx.as_ref() else {
            a.pending.push(input);
            return;
        };
        let chars = match &input {
            TtsInput::Text(t) => t.chars().count() as u64,
            _ => 0,
        };
        if let TtsInput::Text(t) = &input {
            a.tts_sent.push_str(t);
        }
        match tx.try_send(input) {
            Ok(()) => self.meter.add(LineId::Tts, chars, false),
            Err(e) => tracing::warn!(error = %e, "tts input queue full; text dropped"),
        }
    }

    fn on_tts_connected(&mut self, r: Result<TtsStream, TtsError>) {
        let Some(a) = self.agent.as_mut() else { return };
        a.tts_connect = None;
        match r {
            Ok(stream) => {
                a.tts_tx = Some(stream.text);
                a.tts_rx = Some(stream.events);
                for input in std::mem::take(&mut a.pending) {
                    self.tts_send(input);
                }
            }
            Err(e) => {
                if self.pending_failover(Service::Tts, e.code()) {
                    self.provider_failed("tts", e.code(), &e.to_string());
                    return;
                }
                if self.closing.is_some() {
                    // The goodbye cannot be spoken: hang up anyway.
                    self.hang_up = true;
                }
                self.error("tts", e.code(), e.to_string());
                if let Some(a) = self.agent.take() {
                    self.abandon(a);
                }
            }
        }
    }

    fn on_tts(&mut self, ev: Option<TtsEvent>) {
        let Some(a) = self.agent.as_mut() else { return };
        match ev {
            Some(TtsEvent::Audio { pcm, alignment }) => {
                if a.first_audio_at.is_none() {
                    a.first_audio_at = Some(Instant::now());
                    if let Some(t) = a.first_text_at {
                        metrics::histogram!(m::TIME_TO_FIRST, "service" => "tts", "provider" => self.plan.tts.provider.clone())
                            .record(t.elapsed().as_secs_f64());
                    }
                }
                if let Some(al) = alignment {
                    for (i, c) in al.chars.iter().enumerate() {
                        a.aligned.push((*c, al.start_ms.get(i).copied().unwrap_or(0)));
                    }
                }
                if media::l16::decode_le_into(&pcm, &mut self.pcm).is_err() {
                    tracing::warn!("tts sent an odd number of PCM bytes; chunk dropped");
                    return;
                }
                a.audio_ms += self.pcm.len() as u64 * 1000 / u64::from(self.tts_rate.max(1));
                self.out.clear();
                if let Err(e) = self.resampler.process(&self.pcm, &mut self.out) {
                    tracing::warn!(error = %e, "resampling tts audio failed");
                    return;
                }
                a.audio_started = true;
                let samples = self.out.clone();
                if self.writer.try_send(WriterCmd::Audio { turn: a.id, samples }).is_err() {
                    metrics::counter!(m::FRAMES_DROPPED, "queue" => "gateway_out").increment(1);
                }
            }
            Some(TtsEvent::Done) | None => {
                if !a.tts_done {
                    a.tts_done = true;
                    a.tts_rx = None;
                    a.tts_tx = None;
                    let turn = a.id;
                    let _ = self.writer.try_send(WriterCmd::EndOfTurn { turn });
                }
            }
            Some(TtsEvent::Usage { .. }) => {}
            Some(TtsEvent::Error(e)) => {
                if self.pending_failover(Service::Tts, e.code()) {
                    self.provider_failed("tts", e.code(), &e.to_string());
                } else {
                    self.error("tts", e.code(), e.to_string());
                    self.on_tts(None);
                }
            }
        }
    }

    fn on_writer(&mut self, ev: WriterEvent) {
        match ev {
            WriterEvent::FirstFrame { turn } => {
                if let Some(a) = self.agent.as_ref().filter(|a| a.id == turn) {
                    if let Some(t) = a.first_audio_at {
                        metrics::histogram!(m::HOP, "hop" => "tts_first_audio_to_gateway")
                            .record(t.elapsed().as_secs_f64());
                    }
                }
            }
            WriterEvent::PlaybackDone { turn, played_ms } => {
                tracing::debug!(turn, played_ms, "agent turn played out");
                if self.closing == Some(turn) {
                    self.hang_up = true;
                    return;
                }
                let done = self.agent.as_ref().is_some_and(|a| a.id == turn && a.llm_done && a.tts_done);
                if done {
                    if let Some(a) = self.agent.take() {
                        if !a.text.trim().is_empty() {
                            self.conversation.push(Message { role: Role::Assistant, content: a.text.clone() });
                        }
                        self.publish(SessionEvent::AgentDone { text: a.text, turn });
                    }
                    self.maybe_end_user_turn();
                }
            }
        }
    }

    /// The caller spoke while the agent's turn was running.
    async fn interrupt(&mut self, a: AgentTurn, speech_at: Instant) {
        if !a.audio_started {
            // Still thinking: the caller just kept talking. Take the request back and let the
            // next final extend it.
            let user_text = a.user_text.clone();
            self.abandon(a);
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
        let kept = kept_text(&a, played_ms);
        let kept_clean = kept.trim().to_string();
        if !kept_clean.is_empty() {
            self.conversation.push(Message { role: Role::Assistant, content: kept_clean.clone() });
        }
        tracing::info!(turn, played_ms, kept_chars = kept_clean.len(), "barge-in: agent cut off");
        self.publish(SessionEvent::BargeIn { turn, played_ms, kept_text: kept_clean });
        self.abandon(a);
    }

    /// Drop a turn's provider streams (closing them) and bill what it used.
    fn abandon(&mut self, a: AgentTurn) {
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
