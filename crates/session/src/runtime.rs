//! Opening and running one session over a gateway websocket.

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
/// failure ends as a typed error to the gateway and a closed session row.
pub async fn run_session(ws: WebSocket, codec: Box<dyn WireCodec>, deps: Arc<SessionDeps>) {
    let (sink, stream) = ws.split();
    run_gateway(Box::pin(sink), Box::pin(stream), codec, deps).await;
}

/// [`run_session`] over any gateway transport: a websocket's halves, or AudioSocket's TCP.
pub(crate) async fn run_gateway(
    mut sink: GatewaySink,
    mut stream: GatewayStream,
    mut codec: Box<dyn WireCodec>,
    deps: Arc<SessionDeps>,
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
    let session_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("session", session_id = %session_id, gateway);
    run_started(sink, stream, codec, deps, start, session_id, pcm).instrument(span).await;
}

async fn run_started(
    mut sink: GatewaySink,
    mut stream: GatewayStream,
    mut codec: Box<dyn WireCodec>,
    deps: Arc<SessionDeps>,
    start: StartInfo,
    session_id: String,
    mut pcm: Vec<i16>,
) {
    let gateway = codec.gateway();
    let call_id = start.call_id.clone().unwrap_or_else(|| session_id.clone());
    let events = deps.hub.channel(&call_id);
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
    let agent_id = start.params.get("agent").map(String::as_str).unwrap_or("default");
    let telephony = (gateway != "client").then_some(gateway);
    let plan = match deps.plan_for(&session_id, agent_id, telephony).await {
        Ok(p) => {
            metrics::histogram!(m::PLAN_TIME).record(started_at.elapsed().as_secs_f64());
            Arc::new(p)
        }
        Err(e) => {
            let r = refuse(Refusal::new(&e.code, e.message));
            close_with(&mut sink, enc.as_mut(), 1008, &r).await;
            deps.hub.remove(&call_id);
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
        deps.hub.remove(&call_id);
        return;
    };
    let meter = match Meter::from_plan(&plan, deps.store.clone()) {
        Ok(m) => m,
        Err(e) => {
            let r = refuse(Refusal::new(e.code(), e.to_string()));
            close_with(&mut sink, enc.as_mut(), 1008, &r).await;
            deps.hub.remove(&call_id);
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
        deps.hub.remove(&call_id);
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
                deps.hub.remove(&call_id);
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
    // Reserve the next minute on the payer's funds, so concurrent calls cannot overspend.
    if let Err(e) = deps.store.put_hold(&session_id, &plan.payer_org_id, billing::hold::slice_estimate(&plan)).await {
        tracing::warn!(error = %e, "cannot place the session's hold");
    }
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
            deps.hub.remove(&call_id);
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
        (EndReason::Hangup, end) => end.to_string(),
    };
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
    deps.hub.remove(&call_id);
}

/// How the gateway side ended.
#[derive(Debug, Clone, Copy)]
enum GatewayEnd {
    Stop,
    Disconnected,
    TooManyErrors,
    ProviderFailed,
}

impl std::fmt::Display for GatewayEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stop => "hangup",
            Self::Disconnected => "gateway_disconnected",
            Self::TooManyErrors => "too_many_bad_messages",
            Self::ProviderFailed => "provider_failed",
        })
    }
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
    loop {
        let msg = tokio::select! {
            _ = &mut cancelled => return GatewayEnd::ProviderFailed,
            m = stream.next() => m,
        };
        let msg = match msg {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "gateway socket error");
                metrics::counter!(m::GATEWAY_ERRORS, "gateway" => gateway, "code" => "socket").increment(1);
                return GatewayEnd::Disconnected;
            }
            None => return GatewayEnd::Disconnected,
        };
        match codec.decode(&msg, pcm) {
            Ok(Inbound::Audio) => {
                frames_in.increment(1);
                let arrived = Instant::now();
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
                    return GatewayEnd::TooManyErrors;
                }
            }
        }
    }
}
