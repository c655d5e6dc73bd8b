//! One session over a gateway, from connect to settle: wait for `start`, admit the caller,
//! open the session (`open`), run its three tasks — the gateway reader (`reader`), the turn
//! manager (`turn`) and the writer (`output`) — and settle: close the row with its final
//! usage, release the hold, report, and hang up at the carrier when we ended the call.

use crate::admission::{admit, Admitted, UpgradeAuth, Via};
use crate::open::{open, OpenRequest, Opened, Refusal};
use crate::output::{Writer, WriterCmd, WriterEvent};
use crate::reader::{GatewayEnd, Limits, Reader, ReaderLinks};
use crate::transport::{GatewaySink, GatewayStream, Inbound, StartInfo, TransportError, WireCodec, WireEncoder};
use crate::turn::{EndReason, TurnDeps, TurnManager};
use crate::{metrics as m, SessionDeps, SessionEvent};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use media::Resampler;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a gateway may take between connecting and `start`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    billing::store::now_ms()
}

async fn close_with(sink: &mut GatewaySink, enc: &mut dyn WireEncoder, code: u16, r: &Refusal) {
    if let Some(m) = enc.encode_error(&r.code, &r.message) {
        let _ = sink.send(m).await;
    }
    // Close reasons are limited to 123 bytes.
    let mut reason = format!("{}: {}", r.code, r.message);
    while reason.len() > 123 {
        reason.pop();
    }
    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

async fn wait_for_start(
    stream: &mut GatewayStream,
    codec: &mut dyn WireCodec,
    pcm: &mut Vec<i16>,
) -> Result<StartInfo, TransportError> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let msg = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(TransportError::StartTimeout),
            Ok(None) | Ok(Some(Err(_))) => return Err(TransportError::MissingField("start")),
            Ok(Some(Ok(m))) => m,
        };
        match codec.decode(&msg, pcm)? {
            Inbound::Start(info) => return Ok(info),
            Inbound::Audio => return Err(TransportError::MediaBeforeStart),
            Inbound::Stop => return Err(TransportError::MissingField("start")),
            Inbound::Connected | Inbound::Ignore | Inbound::Mark(_) | Inbound::Dtmf(_) => {}
        }
    }
}

/// Run one call from connect to settle. Never panics on gateway or provider input; every
/// failure ends as a typed error to the gateway and a closed session row. `up` is what the
/// upgrade carried to prove who the caller is; nothing runs until [`admit`] lets it in.
pub async fn run_session(ws: WebSocket, codec: Box<dyn WireCodec>, deps: Arc<SessionDeps>, up: UpgradeAuth) {
    let (sink, stream) = ws.split();
    run_gateway(Box::pin(sink), Box::pin(stream), codec, deps, up).await;
}

/// The gateway's two halves and its wire format, for the life of the call.
struct Gateway {
    sink: GatewaySink,
    stream: GatewayStream,
    codec: Box<dyn WireCodec>,
    /// The caller's PCM, decoded into the same buffer for every frame.
    pcm: Vec<i16>,
}

/// [`run_session`] over any gateway transport: a websocket's halves, or AudioSocket's TCP.
pub(crate) async fn run_gateway(
    mut sink: GatewaySink,
    mut stream: GatewayStream,
    mut codec: Box<dyn WireCodec>,
    deps: Arc<SessionDeps>,
    up: UpgradeAuth,
) {
    let gateway = codec.gateway();
    let mut pcm = Vec::with_capacity(1024);
    let start = match wait_for_start(&mut stream, codec.as_mut(), &mut pcm).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(gateway, code = e.code(), "gateway refused before start: {e}");
            metrics::counter!(m::GATEWAY_ERRORS, "gateway" => gateway, "code" => e.code()).increment(1);
            close_with(&mut sink, codec.encoder().as_mut(), 1008, &Refusal::new(e.code(), e.to_string())).await;
            return;
        }
    };
    // Before anything is contacted, held or billed: who is this?
    let admitted = match admit(&deps, gateway, &up, &start).await {
        Ok(a) => a,
        Err(d) => {
            tracing::warn!(gateway, code = d.code, "session refused at admission: {}", d.message);
            metrics::counter!(m::SESSIONS_REFUSED, "code" => d.code).increment(1);
            close_with(&mut sink, codec.encoder().as_mut(), d.close, &Refusal::new(d.code, d.message)).await;
            return;
        }
    };
    let session_id = uuid::Uuid::new_v4().to_string();
    let org = admitted.org_id.clone().unwrap_or_else(|| deps.org_id.clone());
    let Ok(events) = deps.hub.register(&session_id, start.call_id.as_deref(), &org) else {
        let r = Refusal::new("call_id_in_use", "a live call already has this call id");
        tracing::warn!(gateway, code = %r.code, "session refused: {}", r.message);
        metrics::counter!(m::SESSIONS_REFUSED, "code" => "call_id_in_use").increment(1);
        close_with(&mut sink, codec.encoder().as_mut(), 1008, &r).await;
        return;
    };
    let guard = LiveSession::new(deps.clone(), &session_id, start.call_id.as_deref(), events);
    // The trace of the call: the turn and provider spans are its children. Names and ids
    // only: no key, token or caller number.
    let span = tracing::info_span!(
        "session",
        session_id = %session_id,
        gateway,
        org = %org,
        agent = %admitted.agent_id,
        stt = tracing::field::Empty,
        llm = tracing::field::Empty,
        tts = tracing::field::Empty,
        end_reason = tracing::field::Empty,
    );
    let gw = Gateway { sink, stream, codec, pcm };
    run_admitted(gw, deps, start, admitted, guard).instrument(span).await;
}

/// A registered session: counted live (graceful drain) and in the hub until dropped, however
/// the session ends.
struct LiveSession {
    deps: Arc<SessionDeps>,
    session_id: String,
    call_id: Option<String>,
    events: broadcast::Sender<SessionEvent>,
    /// When the gateway's `start` was let in.
    started_at: std::time::Instant,
    _live: crate::drain::LiveCall,
}

impl LiveSession {
    fn new(
        deps: Arc<SessionDeps>,
        session_id: &str,
        call_id: Option<&str>,
        events: broadcast::Sender<SessionEvent>,
    ) -> Self {
        let live = deps.drain.enter();
        Self {
            deps,
            session_id: session_id.to_string(),
            call_id: call_id.map(str::to_string),
            events,
            started_at: std::time::Instant::now(),
            _live: live,
        }
    }

    /// Publish to the call's watchers.
    fn publish(&self, ev: SessionEvent) {
        let _ = self.events.send(ev);
    }

    /// Report a refusal to the call's watchers and metrics.
    fn refused(&self, r: &Refusal) {
        tracing::warn!(code = %r.code, "session refused: {}", r.message);
        tracing::Span::current().record("end_reason", r.code.as_str());
        metrics::counter!(m::SESSIONS_REFUSED, "code" => r.code.clone()).increment(1);
        self.publish(SessionEvent::Error { code: r.code.clone(), message: r.message.clone() });
        self.publish(SessionEvent::End { reason: r.code.clone() });
    }

    /// The session row and hold are settled: closed with `reason`, hold released.
    async fn close(&self, reason: &str) {
        if let Err(e) = self.deps.store.close_session(&self.session_id, now_ms(), reason).await {
            tracing::error!(error = %e, "cannot close session row");
        }
        if let Err(e) = self.deps.store.release_hold(&self.session_id).await {
            tracing::error!(error = %e, "cannot release the session's hold");
        }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.deps.hub.remove(&self.session_id, self.call_id.as_deref());
    }
}

async fn run_admitted(mut gw: Gateway, deps: Arc<SessionDeps>, start: StartInfo, admitted: Admitted, s: LiveSession) {
    let gateway = gw.codec.gateway();
    let mut enc = gw.codec.encoder();
    let req = OpenRequest {
        gateway,
        session_id: &s.session_id,
        call_id: start.call_id.as_deref(),
        admitted: &admitted,
        input_rate: gw.codec.input_rate(),
        events: &s.events,
    };
    let opened = match open(&deps, req).await {
        Ok(o) => o,
        Err(f) => {
            s.refused(&f.refusal);
            close_with(&mut gw.sink, enc.as_mut(), f.close, &f.refusal).await;
            if f.row_written {
                s.close(&f.refusal.code).await;
            }
            return;
        }
    };
    let out_rate = enc.output_rate();
    // TTS providers offer 8/16/22.05/24/44.1 kHz PCM; other gateway rates are resampled.
    let tts_rate = deps.tts_sample_rate.unwrap_or(if tts::SAMPLE_RATES.contains(&out_rate) { out_rate } else { 16000 });
    let Ok(out_resampler) = Resampler::new(tts_rate, out_rate) else {
        let r = Refusal::new("unsupported_format", "the gateway's audio rate cannot be resampled");
        s.refused(&r);
        close_with(&mut gw.sink, enc.as_mut(), 1011, &r).await;
        s.close(&r.code).await;
        return;
    };
    let (writer_tx, writer_rx) = mpsc::channel(1024);
    let (writer_ev_tx, writer_ev_rx) = mpsc::channel(64);
    let writer = tokio::spawn(Writer::new(gateway, gw.sink, enc, writer_ev_tx).run(writer_rx).in_current_span());
    let started = SessionEvent::Started { session_id: s.session_id.clone(), call_sid: start.call_id.clone() };
    s.publish(started.clone());
    let _ = writer_tx.try_send(WriterCmd::Event(started));
    log_started(&opened, start.call_id.as_deref().unwrap_or(&s.session_id));
    metrics::counter!(m::SESSIONS_TOTAL, "gateway" => gateway).increment(1);
    metrics::gauge!(m::SESSIONS_ACTIVE).increment(1.0);
    let writer_link = WriterLink { tx: writer_tx, events: writer_ev_rx, task: writer };
    let io = CallIo { stream: gw.stream, codec: gw.codec, pcm: gw.pcm };
    let ran = run_tasks(&deps, &s, opened, writer_link, io, tts_rate, out_resampler).await;
    settle(&deps, &s, &start, &admitted, ran).await;
    metrics::gauge!(m::SESSIONS_ACTIVE).decrement(1.0);
}

fn log_started(o: &Opened, call_id: &str) {
    let p = &o.plan;
    let span = tracing::Span::current();
    span.record("stt", o.stt_plan.provider.as_str());
    span.record("llm", p.llm.provider.as_str());
    span.record("tts", p.tts.provider.as_str());
    tracing::info!(
        call_id = %call_id,
        stt = %o.stt_plan.provider, llm = %p.llm.provider, tts = %p.tts.provider,
        stt_key = %o.stt_plan.credential.id, llm_key = %p.llm.credential.id, tts_key = %p.tts.credential.id,
        "session started"
    );
}

/// The writer task and its channels.
struct WriterLink {
    tx: mpsc::Sender<WriterCmd>,
    events: mpsc::Receiver<WriterEvent>,
    task: JoinHandle<()>,
}

/// The gateway's inbound half, for the reader.
struct CallIo {
    stream: GatewayStream,
    codec: Box<dyn WireCodec>,
    pcm: Vec<i16>,
}

/// How the call's tasks ended.
struct Ran {
    end: GatewayEnd,
    /// Every usage record the session wrote, and why it ended.
    turn: Option<(Vec<billing::UsageRecord>, EndReason)>,
    writer_tx: mpsc::Sender<WriterCmd>,
    writer: JoinHandle<()>,
}

/// The turn manager on its own task; this task stays the gateway reader until the call ends.
async fn run_tasks(
    deps: &Arc<SessionDeps>,
    s: &LiveSession,
    o: Opened,
    w: WriterLink,
    mut io: CallIo,
    tts_rate: u32,
    resampler: Resampler,
) -> Ran {
    let (stt_switch, stt_audio) = tokio::sync::watch::channel(o.stt_stream.audio.clone());
    let (control_tx, control_rx) = mpsc::channel(64);
    let stt_audio_ms = Arc::new(AtomicU64::new(0));
    let cancel = CancellationToken::new();
    let limits = limits(deps, s, o.agent.max_call);
    let links = ReaderLinks {
        stt_switch: stt_audio,
        control: control_tx,
        stt_audio_ms: stt_audio_ms.clone(),
        writer: w.tx.clone(),
    };
    let reader = Reader::new(io.codec.as_ref(), deps.stt_sample_rate, links, limits);
    let plan_ids = (o.plan.session_id.clone(), o.plan.payer_org_id.clone());
    let turn = TurnManager::new(TurnDeps {
        plan: o.plan,
        llm: o.llm,
        tts: o.tts,
        tts_rate,
        stt: o.stt_stream,
        stt_plan: o.stt_plan,
        stt_span: o.stt_span,
        stt_rate: o.stt_rate,
        stt_switch,
        stt_audio_ms,
        meter: o.meter,
        failover: o.failover,
        events: s.events.clone(),
        writer: w.tx.clone(),
        writer_events: w.events,
        control: control_rx,
        resampler,
        ledger: crate::ledger::Ledger::spawn(
            &plan_ids.0,
            &plan_ids.1,
            deps.store.clone(),
            deps.committer.clone(),
            deps.keep_transcripts,
            crate::ledger::Afterwards { writing: Some(deps.drain.writing()), spool: deps.spool.clone() },
        ),
        checkpoint_every: deps.checkpoint_every,
        shutdown: deps.drain.ending(),
        steps: o.agent.steps,
        apology: o.agent.apology,
        tools: o.tools,
    });
    let turn_task = tokio::spawn(turn.run(cancel.clone()).in_current_span());
    let end = match reader {
        Ok(r) => r.run(&mut io.stream, io.codec.as_mut(), &mut io.pcm, &cancel).await,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the input resampler");
            GatewayEnd::ProviderFailed
        }
    };
    // Keep reading (and dropping) what the caller still sends until the close handshake is
    // over: a socket closed with unread data is reset by the kernel, and the caller would lose
    // the last events (usage, end) and the close frame.
    // Outside the session span: the session's trace ends with the session, not with the
    // caller's side of the close handshake.
    tokio::spawn(drain_inbound(io.stream));
    // Stop the turn manager: it closes STT and writes the last usage.
    cancel.cancel();
    let turn = turn_task.await.inspect_err(|e| tracing::error!(error = %e, "turn manager failed")).ok();
    Ran { end, turn, writer_tx: w.tx, writer: w.task }
}

/// What bounds the call's reader on the wall clock.
fn limits(deps: &SessionDeps, s: &LiveSession, max_call: Duration) -> Limits {
    Limits { idle: deps.access.idle_timeout, jitter: deps.access.jitter, max_call, since: s.started_at }
}

/// The longest the inbound half is kept open after the reader stopped, waiting for the caller's
/// side of the close handshake.
const DRAIN_INBOUND: Duration = Duration::from_secs(15);

/// Read and drop inbound messages until the caller closes (or goes away, or takes too long).
async fn drain_inbound(mut stream: GatewayStream) {
    let deadline = tokio::time::Instant::now() + DRAIN_INBOUND;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, stream.next()).await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
    }
}

/// Settle: the end reason, the carrier hang-up when we ended the call, the close frame, the
/// row and hold, and the last events.
async fn settle(deps: &Arc<SessionDeps>, s: &LiveSession, start: &StartInfo, admitted: &Admitted, ran: Ran) {
    let Ran { end, turn, writer_tx, writer } = ran;
    let Some((records, turn_end)) = turn else {
        s.close("internal_error").await;
        return;
    };
    let reason = match turn_end {
        EndReason::ProviderFailed { code, message } => {
            let ev = SessionEvent::Error { code: code.clone(), message };
            s.publish(ev.clone());
            let _ = writer_tx.send(WriterCmd::Event(ev)).await;
            code
        }
        EndReason::FundsExhausted => "insufficient_funds".to_string(),
        EndReason::ServerShutdown => "server_shutdown".to_string(),
        EndReason::AgentEnded => "agent_ended".to_string(),
        EndReason::Transferred => "transferred".to_string(),
        EndReason::Hangup => end.to_string(),
    };
    // Closing the socket alone may not end a carrier call (Twilio resumes its TwiML). A
    // transferred call is the caller's call to someone else now: never hang it up.
    if !end.by_caller() && reason != "transferred" {
        if let (Via::Carrier { credentials: Some(creds) }, Some(call)) = (&admitted.via, start.call_id.as_deref()) {
            tokio::spawn(hang_up(deps.clone(), creds.clone(), call.to_string()).in_current_span());
        }
    }
    let (code, close_reason) = end.close_code(&reason);
    let _ = writer_tx.send(WriterCmd::Close { code, reason: close_reason }).await;
    s.close(&reason).await;
    let total = crate::meter::total(&records);
    for ev in [SessionEvent::Usage { records }, SessionEvent::End { reason: reason.clone() }] {
        s.publish(ev.clone());
        let _ = writer_tx.send(WriterCmd::Event(ev)).await;
    }
    drop(writer_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    tracing::Span::current().record("end_reason", reason.as_str());
    tracing::info!(%reason, %total, "session ended");
}

/// End the call at the carrier too, with the org's carrier credential.
async fn hang_up(deps: Arc<SessionDeps>, creds: carrier::Credentials, call_id: String) {
    let carrier = creds.carrier().as_str();
    let Some(base) = deps.access.carrier_urls.get(carrier) else {
        tracing::warn!(%carrier, "no REST base URL for the carrier; the call is not hung up there");
        return;
    };
    let result = match carrier::hang_up(&deps.access.http, base, &creds, &call_id).await {
        Ok(carrier::HangUp::Ended) => "ended",
        Ok(carrier::HangUp::AlreadyEnded) => "already_ended",
        Err(e) => {
            tracing::warn!(%carrier, code = e.code(), "hang-up through the carrier failed: {e}");
            "failed"
        }
    };
    tracing::info!(%carrier, result, "hang-up sent to the carrier");
    metrics::counter!(m::CARRIER_HANGUPS, "carrier" => carrier, "result" => result).increment(1);
}
