//! The turn manager: decides when the caller's turn ends, runs the agent's reply
//! (LLM → chunker → TTS → writer) and handles barge-in.
//!
//! One task per session. It never blocks on a provider handshake: LLM request and TTS connect
//! are futures polled in the same `select!` as caller events, so barge-in is always heard.

mod agent;
mod barge_in;
pub(crate) mod failover;
mod metering;
mod timeouts;
mod tools;
mod user;

use crate::chunker::Chunker;
use crate::ledger::Ledger;
use crate::meter::{LineId, Meter};
use crate::output::{WriterCmd, WriterEvent};
use crate::trace::{self, OutcomeSpan};
use crate::{metrics as m, SessionEvent};
use billing::store::Speaker;
use billing::{Service, ServicePlan, SessionPlan, UsageRecord};
pub(crate) use failover::Failover;
use futures::future::BoxFuture;
use llm::{Llm, LlmError, LlmEvent, LlmRequest, Message, Role};
use media::Resampler;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stt::{SttEvent, SttInput, SttStream};
pub(crate) use timeouts::{StepLimits, DEFAULT_APOLOGY};
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
    /// The agent's `end_call` tool: it said its closing line and hung up.
    AgentEnded,
    /// The agent's `transfer_call` tool moved the call elsewhere (no hang-up: that would cut
    /// the transferred caller off).
    Transferred,
    ProviderFailed {
        code: String,
        message: String,
    },
}

pub(crate) struct AgentTurn {
    id: u64,
    /// The turn's trace span, and its current LLM request's and TTS request's.
    span: OutcomeSpan,
    llm_span: Option<OutcomeSpan>,
    tts_span: Option<OutcomeSpan>,
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
    /// When the LLM step under way (first token, next token) is overdue.
    llm_deadline: Option<Instant>,
    /// When the TTS step under way (handshake, first audio, next audio) is overdue.
    tts_deadline: Option<Instant>,
    /// The turn's tool rounds.
    tool: tools::ToolRounds,
}

enum Wake {
    Cancelled,
    Shutdown,
    Timeout,
    Stt(Option<SttEvent>),
    Control(Control),
    LlmStarted(Result<mpsc::Receiver<LlmEvent>, LlmError>),
    Llm(Option<LlmEvent>),
    TtsConnected(Result<TtsStream, TtsError>),
    Tts(Option<TtsEvent>),
    Tools(Vec<crate::tools::Done>),
    /// A transfer went through at the carrier (to this target), perhaps after a barge-in.
    Transferred(String),
    Writer(WriterEvent),
    Checkpoint,
    /// The ledger's funds check found less than the reserve available.
    LowFunds(i64),
}

pub(crate) struct TurnManager {
    plan: Arc<SessionPlan>,
    llm: Arc<dyn Llm>,
    tts: Arc<dyn Tts>,
    tts_rate: u32,
    stt: SttStream,
    meter: Meter,
    events: broadcast::Sender<SessionEvent>,
    writer: mpsc::Sender<WriterCmd>,
    writer_events: mpsc::Receiver<WriterEvent>,
    control: mpsc::Receiver<Control>,
    stt_audio_ms: Arc<AtomicU64>,
    started: Instant,
    checkpoint_every: Duration,
    resampler: Resampler,
    conversation: Vec<Message>,
    user_buf: String,
    caller_speaking: bool,
    endpoint_seen: bool,
    agent: Option<AgentTurn>,
    next_turn: u64,
    last_final_at: Option<Instant>,
    pcm: Vec<i16>,
    out: Vec<i16>,
    /// For the funds check at each checkpoint.
    ledger: Ledger,
    /// Set once funds ran out: the id of the turn speaking the closing line.
    closing: Option<u64>,
    /// The closing line has been played: end the session.
    hang_up: bool,
    /// Why the closing line is spoken.
    closing_reason: EndReason,
    /// Fires when the server, draining, ends its remaining calls.
    shutdown: CancellationToken,
    /// The providers serving each service now (a fallback after a failover).
    stt_plan: ServicePlan,
    /// The current STT stream's trace span.
    stt_span: Option<OutcomeSpan>,
    /// The session's trace span: the parent of every turn span.
    span: tracing::Span,
    llm_plan: ServicePlan,
    tts_plan: ServicePlan,
    failover: Failover,
    /// Hands the gateway reader the audio sender of a fallback STT stream.
    stt_switch: watch::Sender<mpsc::Sender<SttInput>>,
    stt_rate: u32,
    /// Audio already sent when the current STT stream started (its usage counts from here).
    stt_audio_base: u64,
    /// A failover decided in a sync handler, carried out by the main loop next.
    failover_due: Option<(Service, String)>,
    steps: StepLimits,
    /// Said when no provider can answer a turn.
    apology: String,
    /// The caller finished speaking: STT must say something by then.
    stt_deadline: Option<Instant>,
    /// A failure the call cannot go on after (TTS gone): the session ends with it.
    fatal: Option<EndReason>,
    /// The agent's tools, offered with every LLM request; `None` when it declares none.
    tools: Option<Arc<crate::tools::ToolBox>>,
    /// Sees a transfer through, even after a barge-in dropped its round.
    transfer_watch: Option<watch::Receiver<Option<String>>>,
}

/// What a turn manager is built from: the session's plan and providers, its channels to the
/// gateway reader and writer, and the server-wide pieces it uses.
pub(crate) struct TurnDeps {
    pub plan: Arc<SessionPlan>,
    pub llm: Arc<dyn Llm>,
    pub tts: Arc<dyn Tts>,
    pub tts_rate: u32,
    pub stt: SttStream,
    pub stt_plan: ServicePlan,
    pub stt_span: OutcomeSpan,
    pub stt_rate: u32,
    pub stt_switch: watch::Sender<mpsc::Sender<SttInput>>,
    pub stt_audio_ms: Arc<AtomicU64>,
    pub meter: Meter,
    pub failover: Failover,
    pub events: broadcast::Sender<SessionEvent>,
    pub writer: mpsc::Sender<WriterCmd>,
    pub writer_events: mpsc::Receiver<WriterEvent>,
    pub control: mpsc::Receiver<Control>,
    pub resampler: Resampler,
    pub ledger: Ledger,
    pub checkpoint_every: Duration,
    pub shutdown: CancellationToken,
    pub steps: StepLimits,
    pub apology: String,
    pub tools: Option<Arc<crate::tools::ToolBox>>,
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

/// The target of a transfer once it went through; pending forever without tools.
async fn transfer_done(rx: &mut Option<watch::Receiver<Option<String>>>) -> String {
    if let Some(rx) = rx {
        if let Ok(to) = rx.wait_for(Option::is_some).await {
            return to.clone().unwrap_or_default();
        }
    }
    std::future::pending().await
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
    pub(crate) fn new(d: TurnDeps) -> Self {
        Self {
            llm_plan: d.plan.llm.clone(),
            tts_plan: d.plan.tts.clone(),
            plan: d.plan,
            llm: d.llm,
            tts: d.tts,
            tts_rate: d.tts_rate,
            stt: d.stt,
            meter: d.meter,
            events: d.events,
            writer: d.writer,
            writer_events: d.writer_events,
            control: d.control,
            stt_audio_ms: d.stt_audio_ms,
            started: Instant::now(),
            checkpoint_every: d.checkpoint_every,
            resampler: d.resampler,
            conversation: Vec::new(),
            user_buf: String::new(),
            caller_speaking: false,
            endpoint_seen: false,
            agent: None,
            next_turn: 1,
            last_final_at: None,
            pcm: Vec::with_capacity(4096),
            out: Vec::with_capacity(4096),
            ledger: d.ledger,
            closing: None,
            hang_up: false,
            closing_reason: EndReason::FundsExhausted,
            shutdown: d.shutdown,
            stt_plan: d.stt_plan,
            stt_span: Some(d.stt_span),
            // Built inside the session's span (the turn task runs in it).
            span: tracing::Span::current(),
            failover: d.failover,
            stt_switch: d.stt_switch,
            stt_rate: d.stt_rate,
            stt_audio_base: 0,
            failover_due: None,
            steps: d.steps,
            apology: d.apology,
            stt_deadline: None,
            fatal: None,
            transfer_watch: d.tools.as_ref().map(|t| t.transferred()),
            tools: d.tools,
        }
    }

    fn publish(&self, ev: SessionEvent) {
        self.keep_transcript(&ev);
        let _ = self.events.send(ev.clone());
        // The client websocket carries events in-band; the writer drops them for Twilio.
        let _ = self.writer.try_send(WriterCmd::Event(ev));
    }

    /// What was said outlives the call: the caller's finals, the agent's lines as played.
    fn keep_transcript(&self, ev: &SessionEvent) {
        match ev {
            SessionEvent::Transcript { text, is_final: true } => self.ledger.transcript(Speaker::Caller, text, false),
            SessionEvent::AgentDone { text, .. } => self.ledger.transcript(Speaker::Agent, text, false),
            SessionEvent::BargeIn { kept_text, .. } => self.ledger.transcript(Speaker::Agent, kept_text, true),
            _ => {}
        }
    }

    fn error(&self, service: Service, code: &str, message: String) {
        self.provider_failed(service, code, &message);
        self.publish(SessionEvent::Error { code: code.to_string(), message });
    }

    /// A provider failure the call survives (a fallback takes over): logged and counted, but
    /// not a session error.
    fn provider_failed(&self, service: Service, code: &str, message: &str) {
        let service = service.as_str();
        tracing::warn!(service, code, %message, "provider error");
        metrics::counter!(m::PROVIDER_ERRORS, "service" => service, "code" => code.to_string()).increment(1);
    }

    /// Run the conversation to its end; every usage record the session wrote, and why it ended.
    pub(crate) async fn run(mut self, cancel: CancellationToken) -> (Vec<UsageRecord>, EndReason) {
        let mut tick = tokio::time::interval(self.checkpoint_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let shutdown = self.shutdown.clone();
        let shutdown = shutdown.cancelled();
        tokio::pin!(shutdown);
        // One timer for every provider deadline, re-armed only when the earliest one moves.
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        let reason = loop {
            let due = self.next_deadline();
            if due != armed {
                if let Some(d) = due {
                    timer.as_mut().reset(d.into());
                }
                armed = due;
            }
            let wake = {
                let mut none_ls = None;
                let mut none_lr = None;
                let mut none_tc = None;
                let mut none_tr = None;
                let mut none_tools = None;
                let (ls, lr, tc, tr, tools) = match self.agent.as_mut() {
                    Some(a) => (&mut a.llm_start, &mut a.llm_rx, &mut a.tts_connect, &mut a.tts_rx, &mut a.tool.run),
                    None => (&mut none_ls, &mut none_lr, &mut none_tc, &mut none_tr, &mut none_tools),
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
                    done = opt_fut(tools) => Wake::Tools(done),
                    to = transfer_done(&mut self.transfer_watch) => Wake::Transferred(to),
                    Some(ev) = self.writer_events.recv() => Wake::Writer(ev),
                    Some(available) = self.ledger.low_funds() => Wake::LowFunds(available),
                    _ = tick.tick() => Wake::Checkpoint,
                    () = &mut timer, if armed.is_some() => Wake::Timeout,
                }
            };
            if let Some(end) = self.handle(wake).await {
                break end;
            }
            self.run_due_failover().await;
            if let Some(end) = self.fatal.take() {
                cancel.cancel();
                break end;
            }
            if self.hang_up {
                // Stop the gateway reader too: the session ends here.
                cancel.cancel();
                break self.closing_reason.clone();
            }
        };
        self.finish().await;
        let last = self.meter.take_records();
        (self.ledger.close(last).await, reason)
    }

    /// Act on one wake-up; `Some` ends the session with that reason.
    async fn handle(&mut self, wake: Wake) -> Option<EndReason> {
        match wake {
            Wake::Cancelled => return Some(EndReason::Hangup),
            Wake::Shutdown => {
                tracing::info!("server draining: saying goodbye");
                self.say_closing_line(SHUTDOWN_LINE, EndReason::ServerShutdown).await;
            }
            Wake::Stt(None) => {
                if !self.fail_over_stt("stt_closed").await {
                    let message = format!("{} closed the transcription stream", self.stt_plan.provider);
                    return Some(EndReason::ProviderFailed { code: "stt_closed".into(), message });
                }
            }
            Wake::Stt(Some(SttEvent::Error(e))) => {
                self.provider_failed(Service::Stt, e.code(), &e.to_string());
                if !self.fail_over_stt(e.code()).await {
                    self.publish(SessionEvent::Error { code: e.code().to_string(), message: e.to_string() });
                    return Some(EndReason::ProviderFailed { code: e.code().to_string(), message: e.to_string() });
                }
            }
            Wake::Stt(Some(ev)) => self.on_stt(ev),
            Wake::Control(c) => self.on_control(c).await,
            Wake::LlmStarted(r) => self.on_llm_started(r),
            Wake::Llm(ev) => self.on_llm(ev),
            Wake::TtsConnected(r) => self.on_tts_connected(r),
            Wake::Tts(ev) => self.on_tts(ev),
            Wake::Tools(done) => self.on_tools_done(done).await,
            Wake::Transferred(to) => self.on_transferred(&to),
            Wake::Writer(ev) => self.on_writer(ev),
            Wake::Checkpoint => {
                self.checkpoint();
                self.check_funds();
            }
            Wake::LowFunds(available) => self.on_low_funds(available).await,
            Wake::Timeout => self.on_timeout().await,
        }
        None
    }
}
