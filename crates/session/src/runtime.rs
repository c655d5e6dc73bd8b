//! Opening and running one session over a gateway websocket.

use crate::admission::{admit, Admitted, UpgradeAuth, Via};
use crate::meter::Meter;
use crate::output::{Writer, WriterCmd};
use crate::transport::{GatewaySink, GatewayStream, Inbound, StartInfo, TransportError, WireCodec, WireEncoder};
use crate::turn::{Control, EndReason, TurnManager};
use crate::{metrics as m, SessionDeps, SessionEvent};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use billing::store::SessionRow;
use futures::{SinkExt, StreamExt};
use media::{Resampler, Vad, VadConfig, VadEvent};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stt::{SttInput, SttRequest};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a gateway may take between connecting and `start`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Bad messages tolerated in one call before it is closed.
const MAX_BAD_MESSAGES: u32 = 50;

/// Caller audio goes to STT in packets of this many ms (three gateway frames): a third of the
/// channel sends, socket writes and wake-ups of one packet per frame, within the 20–100 ms
/// providers recommend; it delays transcripts by at most 40 ms, small beside endpointing.
const STT_BATCH_MS: u32 = 60;

/// The caller's VAD: speech after two loud frames (40 ms), so a barge-in `clear` goes out about
/// 20 ms after the first frame of speech arrives.
const CALLER_VAD: VadConfig =
    VadConfig { min_speech_dbfs: -45.0, above_floor_db: 12.0, start_frames: 2, hangover_frames: 15 };

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A refusal before or at session start: reported to the gateway, then the socket is closed.
struct Refusal {
    code: String,
    message: String,
}

impl Refusal {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_string(), message: message.into() }
    }
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
    // Counted live until this function returns, however the session ends (graceful drain).
    let _live = deps.drain.enter();
    let session_id = uuid::Uuid::new_v4().to_string();
    let org = admitted.org_id.clone().unwrap_or_else(|| deps.org_id.clone());
    let events = match deps.hub.register(&session_id, start.call_id.as_deref(), &org) {
        Ok(ev) => ev,
        Err(_) => {
            let r = Refusal::new("call_id_in_use", "a live call already has this call id");
            tracing::warn!(gateway, code = %r.code, "session refused: {}", r.message);
            metrics::counter!(m::SESSIONS_REFUSED, "code" => "call_id_in_use").increment(1);
            close_with(&mut sink, codec.encoder().as_mut(), 1008, &r).await;
            return;
        }
    };
    let span = tracing::info_span!("session", session_id = %session_id, gateway);
    let call = Call { start, session_id, admitted, events };
    run_started(sink, stream, codec, deps, call, pcm).instrument(span).await;
}

/// A call let in at `start`: what it asked for, who it is, and its live event channel.
struct Call {
    start: StartInfo,
    session_id: String,
    admitted: Admitted,
    events: tokio::sync::broadcast::Sender<SessionEvent>,
}

async fn run_started(
    mut sink: GatewaySink,
    mut stream: GatewayStream,
    mut codec: Box<dyn WireCodec>,
    deps: Arc<SessionDeps>,
    call: Call,
    mut pcm: Vec<i16>,
) {
    let gateway = codec.gateway();
    let Call { start, session_id, admitted, events } = call;
    let call_id = start.call_id.clone().unwrap_or_else(|| session_id.clone());
    let mut enc = codec.encoder();
    let refuse = |r: Refusal| {
        tracing::warn!(code = %r.code, "session refused: {}", r.message);
        metrics::counter!(m::SESSIONS_REFUSED, "code" => r.code.clone()).increment(1);
        let _ = events.send(SessionEvent::Error { code: r.code.clone(), message: r.message.clone() });
        let _ = events.send(SessionEvent::End { reason: r.code.clone() });
        r
    };

    // 1. Plan: resolved once; this call keeps these keys and prices whatever changes later.
    let started_at = Instant::now();
    // On the org's own carrier account (its number, its credential) the carrier bills the org
    // directly: no telephony line, only the platform's fee and markup. Platform numbers keep it.
    let own_carrier = matches!(admitted.via, Via::Carrier { credentials: Some(_) });
    let telephony = (gateway != "client" && !own_carrier).then_some(gateway);
    let (plan, max_call) = match deps.plan_for(&session_id, &admitted.agent_id, telephony).await {
        Ok((p, max_call)) => {
            metrics::histogram!(m::PLAN_TIME).record(started_at.elapsed().as_secs_f64());
            (Arc::new(p), max_call)
        }
        Err(e) => {
            let r = refuse(Refusal::new(&e.code, e.message));
            close_with(&mut sink, enc.as_mut(), 1008, &r).await;
            deps.hub.remove(&session_id, start.call_id.as_deref());
            return;
        }
    };
    let (Some(stt), Some(llm), Some(tts)) = (
        deps.providers.stt.get(&plan.stt.provider).cloned(),
        deps.providers.llm.get(&plan.llm.provider).cloned(),
        deps.providers.tts.get(&plan.tts.provider).cloned(),
    ) else {
        let r = refuse(Refusal::new("unknown_provider", "the agent names a provider this server has no adapter for"));
        close_with(&mut sink, enc.as_mut(), 1008, &r).await;
        deps.hub.remove(&session_id, start.call_id.as_deref());
        return;
    };
    let meter = match Meter::from_plan(&plan, deps.store.clone()) {
        Ok(m) => m,
        Err(e) => {
            let r = refuse(Refusal::new(e.code(), e.to_string()));
            close_with(&mut sink, enc.as_mut(), 1008, &r).await;
            deps.hub.remove(&session_id, start.call_id.as_deref());
            return;
        }
    };
    let row = SessionRow {
        session_id: session_id.clone(),
        call_sid: start.call_id.clone(),
        org_id: plan.org_id.clone(),
        gateway: gateway.to_string(),
        status: "open".into(),
        started_at_ms: now_ms(),
        ended_at_ms: None,
        end_reason: None,
        plan_json: serde_json::to_string(plan.as_ref()).unwrap_or_else(|_| "{}".into()),
    };
    if let Err(e) = deps.store.open_session(&row).await {
        let r = refuse(Refusal::new(e.code(), "the session store is unavailable"));
        tracing::error!(error = %e, "cannot open session row");
        close_with(&mut sink, enc.as_mut(), 1011, &r).await;
        deps.hub.remove(&session_id, start.call_id.as_deref());
        return;
    }
    // Reserve the next minute on the payer's funds before any provider is called. For an org,
    // the funds check and the hold are one transaction, so simultaneous starts cannot together
    // hold more than the payer has.
    if let Err((code, close)) = hold_funds(&deps, &session_id, &plan, admitted.org_id.is_some()).await {
        let message = match code {
            "insufficient_funds" => "the payer's available funds do not cover the call's next minute",
            _ => "the session store is unavailable",
        };
        let r = refuse(Refusal::new(code, message));
        close_with(&mut sink, enc.as_mut(), close, &r).await;
        let _ = deps.store.close_session(&session_id, now_ms(), code).await;
        deps.hub.remove(&session_id, start.call_id.as_deref());
        return;
    }

    // 2. STT connects before audio flows; a refused key moves to the agent's next STT
    //    fallback, and ends the call when none is left.
    let mut meter = meter;
    let mut failover = crate::failover::Failover::from_plan(&plan, &deps.providers);
    let stt_rate = deps.stt_sample_rate.unwrap_or(codec.input_rate());
    let mut stt_plan = plan.stt.clone();
    let mut stt = stt;
    let stt_stream = loop {
        let req = SttRequest {
            base_url: &stt_plan.base_url,
            key: &stt_plan.credential.key,
            model: &stt_plan.model,
            sample_rate: stt_rate,
            language: "en",
        };
        let (code, message) = match tokio::time::timeout(Duration::from_secs(10), stt.connect(req)).await {
            Ok(Ok(s)) => break s,
            Ok(Err(e)) => {
                metrics::counter!(m::PROVIDER_ERRORS, "service" => "stt", "code" => e.code()).increment(1);
                (e.code().to_string(), e.to_string())
            }
            Err(_) => ("stt_timeout".to_string(), "the speech-to-text provider did not answer".to_string()),
        };
        match failover.stt.pop_front() {
            Some((next, adapter)) => {
                tracing::warn!(from = %stt_plan.provider, to = %next.provider, code = %code, "stt refused at connect; moving to the fallback");
                let ev = SessionEvent::Failover {
                    service: "stt".into(),
                    from: stt_plan.provider.clone(),
                    to: next.provider.clone(),
                    code,
                };
                let _ = events.send(ev);
                meter.switch_service(billing::Service::Stt, &next, now_ms()).await;
                stt_plan = next;
                stt = adapter;
            }
            None => {
                let r = refuse(Refusal::new(&code, message));
                close_with(&mut sink, enc.as_mut(), 1011, &r).await;
                let _ = deps.store.close_session(&session_id, now_ms(), &code).await;
                deps.hub.remove(&session_id, start.call_id.as_deref());
                return;
            }
        }
    };
    metrics::histogram!(m::SETUP_TIME).record(started_at.elapsed().as_secs_f64());
    let (stt_switch, stt_audio) = tokio::sync::watch::channel(stt_stream.audio.clone());

    // 3. Tasks: writer (gateway out), turn manager; this task stays the gateway reader.
    let (writer_tx, writer_rx) = tokio::sync::mpsc::channel(1024);
    let (writer_ev_tx, writer_ev_rx) = tokio::sync::mpsc::channel(64);
    let out_rate = enc.output_rate();
    let writer = tokio::spawn(Writer::new(sink, enc, writer_ev_tx).run(writer_rx).in_current_span());
    let started_ev = SessionEvent::Started { session_id: session_id.clone(), call_sid: start.call_id.clone() };
    let _ = events.send(started_ev.clone());
    let _ = writer_tx.try_send(WriterCmd::Event(started_ev));
    tracing::info!(
        call_id = %call_id,
        stt = %plan.stt.provider, llm = %plan.llm.provider, tts = %plan.tts.provider,
        stt_key = %plan.stt.credential.id, llm_key = %plan.llm.credential.id, tts_key = %plan.tts.credential.id,
        "session started"
    );
    metrics::counter!(m::SESSIONS_TOTAL, "gateway" => gateway).increment(1);
    metrics::gauge!(m::SESSIONS_ACTIVE).increment(1.0);

    let (control_tx, control_rx) = tokio::sync::mpsc::channel(64);
    let stt_audio_ms = Arc::new(AtomicU64::new(0));
    let cancel = CancellationToken::new();
    // TTS providers offer 8/16/22.05/24/44.1 kHz PCM; other gateway rates are resampled.
    let tts_rate = deps.tts_sample_rate.unwrap_or(if tts::SAMPLE_RATES.contains(&out_rate) { out_rate } else { 16000 });
    let resampler = match Resampler::new(tts_rate, out_rate) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the output resampler");
            cancel.cancel();
            return;
        }
    };
    let turn = TurnManager {
        plan: plan.clone(),
        llm,
        tts,
        tts_rate,
        stt: stt_stream,
        meter,
        events: events.clone(),
        writer: writer_tx.clone(),
        writer_events: writer_ev_rx,
        control: control_rx,
        stt_audio_ms: stt_audio_ms.clone(),
        started: Instant::now(),
        checkpoint_every: deps.checkpoint_every,
        resampler,
        conversation: Vec::new(),
        user_buf: String::new(),
        caller_speaking: false,
        endpoint_seen: false,
        agent: None,
        next_turn: 1,
        last_final_at: None,
        pcm: Vec::with_capacity(4096),
        out: Vec::with_capacity(4096),
        store: deps.store.clone(),
        closing: None,
        hang_up: false,
        closing_reason: EndReason::FundsExhausted,
        shutdown: deps.drain.ending(),
        stt_plan,
        llm_plan: plan.llm.clone(),
        tts_plan: plan.tts.clone(),
        failover,
        stt_switch,
        stt_rate,
        stt_audio_base: 0,
        failover_due: None,
    };
    let turn_task = tokio::spawn(turn.run(cancel.clone()).in_current_span());

    let end = read_gateway(
        &mut stream,
        codec.as_mut(),
        &mut pcm,
        &deps,
        stt_audio,
        control_tx,
        stt_audio_ms,
        &writer_tx,
        &cancel,
        Limits { idle: deps.access.idle_timeout, jitter: deps.access.jitter, max_call },
    )
    .await;

    // 4. Settle: stop the turn manager (it closes STT and writes the last usage), report, close.
    cancel.cancel();
    let (meter, reason) = match turn_task.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "turn manager failed");
            let _ = deps.store.close_session(&session_id, now_ms(), "internal_error").await;
            let _ = deps.store.release_hold(&session_id).await;
            metrics::gauge!(m::SESSIONS_ACTIVE).decrement(1.0);
            deps.hub.remove(&session_id, start.call_id.as_deref());
            return;
        }
    };
    let reason = match (reason, end) {
        (EndReason::ProviderFailed { code, message }, _) => {
            let ev = SessionEvent::Error { code: code.clone(), message };
            let _ = events.send(ev.clone());
            let _ = writer_tx.send(WriterCmd::Event(ev)).await;
            code
        }
        (EndReason::FundsExhausted, _) => "insufficient_funds".to_string(),
        (EndReason::ServerShutdown, _) => "server_shutdown".to_string(),
        (EndReason::Hangup, end) => end.to_string(),
    };
    // The caller hung up, or the socket is gone: nothing to tell the carrier. Otherwise we end
    // the call, and closing the socket alone may not end it (Twilio resumes its TwiML).
    if !matches!(end, GatewayEnd::Stop | GatewayEnd::Disconnected) {
        if let (Via::Carrier { credentials: Some(creds) }, Some(call)) = (&admitted.via, start.call_id.as_deref()) {
            tokio::spawn(hang_up(deps.clone(), gateway, creds.clone(), call.to_string()).in_current_span());
        }
    }
    let (code, close_reason) = end.close_code(&reason);
    let _ = writer_tx.send(WriterCmd::Close { code, reason: close_reason }).await;
    let records = meter.written().to_vec();
    let total = meter.total();
    if let Err(e) = deps.store.close_session(&session_id, now_ms(), &reason).await {
        tracing::error!(error = %e, "cannot close session row");
    }
    if let Err(e) = deps.store.release_hold(&session_id).await {
        tracing::error!(error = %e, "cannot release the session's hold");
    }
    for ev in [SessionEvent::Usage { records }, SessionEvent::End { reason: reason.clone() }] {
        let _ = events.send(ev.clone());
        let _ = writer_tx.send(WriterCmd::Event(ev)).await;
    }
    drop(writer_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    tracing::info!(%reason, total = %total, "session ended");
    metrics::gauge!(m::SESSIONS_ACTIVE).decrement(1.0);
    deps.hub.remove(&session_id, start.call_id.as_deref());
}

/// Place the session's hold: atomically against the payer's funds for an org's call, plainly
/// for the server's own `default` agent (no org row, platform-funded).
async fn hold_funds(
    deps: &SessionDeps,
    session_id: &str,
    plan: &billing::SessionPlan,
    org_call: bool,
) -> Result<(), (&'static str, u16)> {
    let amount = billing::hold::slice_estimate(plan);
    let placed = if org_call {
        deps.store.place_hold(session_id, &plan.payer_org_id, amount).await
    } else {
        deps.store.put_hold(session_id, &plan.payer_org_id, amount).await.map(|()| true)
    };
    match placed {
        Ok(true) => Ok(()),
        Ok(false) => Err(("insufficient_funds", 1008)),
        Err(e) => {
            tracing::error!(error = %e, "cannot place the session's hold");
            Err(("store_unavailable", 1011))
        }
    }
}

/// How the gateway side ended.
#[derive(Debug, Clone, Copy)]
enum GatewayEnd {
    Stop,
    Disconnected,
    /// Too many bad messages; the last one's close code (1008 policy, 1003 unsupported data).
    TooManyErrors(u16),
    /// A message over the size limit (1009).
    TooBig,
    ProviderFailed,
    IdleTimeout,
    MaxDuration,
}

impl GatewayEnd {
    /// The close frame for the gateway: the documented code, and the end reason.
    fn close_code(self, reason: &str) -> (u16, String) {
        let code = match self {
            Self::TooManyErrors(code) => code,
            Self::TooBig => 1009,
            Self::ProviderFailed if reason == "server_shutdown" => 1001,
            Self::ProviderFailed if reason != "insufficient_funds" && reason != "hangup" => 1011,
            _ => 1000,
        };
        (code, reason.chars().take(123).collect())
    }
}

impl std::fmt::Display for GatewayEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stop => "hangup",
            Self::Disconnected => "gateway_disconnected",
            Self::TooManyErrors(_) => "too_many_bad_messages",
            Self::TooBig => "message_too_big",
            Self::ProviderFailed => "provider_failed",
            Self::IdleTimeout => "idle_timeout",
            Self::MaxDuration => "max_duration",
        })
    }
}

/// The close code a bad message earns: data the protocol does not carry is 1003, anything
/// else that breaks the protocol is 1008.
fn violation_code(e: &TransportError) -> u16 {
    match e {
        TransportError::BinaryNotAllowed | TransportError::UnsupportedFormat(_) => 1003,
        _ => 1008,
    }
}

/// What bounds a call on the wall clock.
struct Limits {
    idle: Duration,
    jitter: Duration,
    max_call: Duration,
}

/// End the call at the carrier too, with the org's carrier credential.
async fn hang_up(deps: Arc<SessionDeps>, carrier: &'static str, creds: carrier::Credentials, call_id: String) {
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

/// The gateway read loop: decode, VAD, resample, feed STT. Never awaits a provider.
#[allow(clippy::too_many_arguments)]
async fn read_gateway(
    stream: &mut GatewayStream,
    codec: &mut dyn WireCodec,
    pcm: &mut Vec<i16>,
    deps: &SessionDeps,
    mut stt_switch: tokio::sync::watch::Receiver<tokio::sync::mpsc::Sender<SttInput>>,
    control: tokio::sync::mpsc::Sender<Control>,
    stt_audio_ms: Arc<AtomicU64>,
    writer: &tokio::sync::mpsc::Sender<WriterCmd>,
    cancel: &CancellationToken,
    limits: Limits,
) -> GatewayEnd {
    let gateway = codec.gateway();
    let mut stt_audio = stt_switch.borrow_and_update().clone();
    let in_rate = codec.input_rate();
    let stt_rate = deps.stt_sample_rate.unwrap_or(in_rate);
    let mut resampler = match Resampler::new(in_rate, stt_rate) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the input resampler");
            return GatewayEnd::ProviderFailed;
        }
    };
    let mut vad = Vad::new(CALLER_VAD);
    // When the current run of loud frames began: barge-in latency counts from the first frame
    // of speech, not from the VAD's decision.
    let mut loud_since: Option<Instant> = None;
    let vad_frame = media::samples_per_20ms(in_rate);
    let stt_batch_samples = (stt_rate * STT_BATCH_MS / 1000) as usize;
    let mut up: Vec<i16> = Vec::with_capacity(4096);
    // One buffer for every frame sent to STT: each frame is split off as `Bytes`, and once the
    // STT task has sent it the space is reclaimed, so steady state allocates nothing.
    let mut le = bytes::BytesMut::with_capacity(16 * 1024);
    let frames_in = metrics::counter!(m::FRAMES, "direction" => "in", "gateway" => gateway);
    let dropped = metrics::counter!(m::FRAMES_DROPPED, "queue" => "stt_in");
    let mut bad = 0u32;
    let mut sent_samples: u64 = 0;
    // One cancellation future for the whole call: re-creating it per frame would register and
    // unregister a waiter (a lock) 50 times a second.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    // Caller audio is bounded by the wall clock: what arrives beyond real time (plus jitter) is
    // dropped, so billed STT time never exceeds the call's length.
    let began = Instant::now();
    let mut last_media = began;
    let mut received: u64 = 0;
    let ahead = metrics::counter!(m::GATEWAY_FRAMES_DROPPED, "gateway" => gateway, "reason" => "ahead_of_clock");
    let max_call = tokio::time::sleep(limits.max_call);
    tokio::pin!(max_call);
    let mut idle_check = tokio::time::interval(Duration::from_secs(1));
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let msg = tokio::select! {
            _ = &mut cancelled => return GatewayEnd::ProviderFailed,
            _ = &mut max_call => return GatewayEnd::MaxDuration,
            _ = idle_check.tick() => {
                if last_media.elapsed() >= limits.idle {
                    return GatewayEnd::IdleTimeout;
                }
                continue;
            }
            m = stream.next() => m,
        };
        let msg = match msg {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                // tungstenite reports an oversized message as a capacity error.
                let too_big = e.to_string().contains("Message too long");
                let code = if too_big { "message_too_big" } else { "socket" };
                tracing::warn!(error = %e, code, "gateway socket error");
                metrics::counter!(m::GATEWAY_ERRORS, "gateway" => gateway, "code" => code).increment(1);
                return if too_big { GatewayEnd::TooBig } else { GatewayEnd::Disconnected };
            }
            None => return GatewayEnd::Disconnected,
        };
        match codec.decode(&msg, pcm) {
            Ok(Inbound::Audio) => {
                let arrived = Instant::now();
                last_media = arrived;
                let allowed = (arrived - began + limits.jitter).as_millis() as u64 * u64::from(in_rate) / 1000;
                if received + pcm.len() as u64 > allowed {
                    ahead.increment(1);
                    continue;
                }
                received += pcm.len() as u64;
                frames_in.increment(1);
                for frame in pcm.chunks(vad_frame) {
                    let ev = vad.push(frame);
                    if vad.loud_run() == 1 {
                        loud_since = Some(arrived);
                    }
                    match ev {
                        VadEvent::SpeechStart => {
                            let at = loud_since.unwrap_or(arrived);
                            let _ = control.try_send(Control::SpeechStart { at });
                        }
                        VadEvent::SpeechEnd => {
                            let _ = control.try_send(Control::SpeechEnd);
                        }
                        VadEvent::None => {}
                    }
                }
                up.clear();
                if let Err(e) = resampler.process(pcm, &mut up) {
                    tracing::warn!(error = %e, "input resampling failed");
                    continue;
                }
                le.reserve(up.len() * 2);
                for s in &up {
                    le.extend_from_slice(&s.to_le_bytes());
                }
                if le.len() / 2 < stt_batch_samples {
                    continue;
                }
                let batch = le.len() / 2;
                if stt_switch.has_changed().unwrap_or(false) {
                    // STT failed over: audio goes to the fallback's stream from here on.
                    stt_audio = stt_switch.borrow_and_update().clone();
                }
                match stt_audio.try_send(SttInput::Audio(le.split().freeze())) {
                    Ok(()) => {
                        sent_samples += batch as u64;
                        stt_audio_ms.store(sent_samples * 1000 / u64::from(stt_rate), Ordering::Relaxed);
                    }
                    Err(_) => dropped.increment(1),
                }
            }
            Ok(Inbound::Stop) => return GatewayEnd::Stop,
            Ok(Inbound::Mark(name)) => {
                let _ = control.try_send(Control::Mark(name));
            }
            Ok(Inbound::Dtmf(d)) => {
                let _ = control.try_send(Control::Dtmf(d));
            }
            Ok(Inbound::Start(_)) => {
                tracing::warn!(code = "duplicate_start", "second start on one stream ignored");
                metrics::counter!(m::GATEWAY_ERRORS, "gateway" => gateway, "code" => "duplicate_start").increment(1);
            }
            Ok(Inbound::Connected) | Ok(Inbound::Ignore) => {}
            Err(e) => {
                bad += 1;
                tracing::warn!(code = e.code(), "bad gateway message ignored: {e}");
                metrics::counter!(m::GATEWAY_ERRORS, "gateway" => gateway, "code" => e.code()).increment(1);
                let _ = writer.try_send(WriterCmd::Event(SessionEvent::Error {
                    code: e.code().to_string(),
                    message: e.to_string(),
                }));
                if bad > MAX_BAD_MESSAGES {
                    return GatewayEnd::TooManyErrors(violation_code(&e));
                }
            }
        }
    }
}
