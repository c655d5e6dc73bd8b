//! Opening a session that was let in: the plan (resolved once: keys, prices, fallbacks), the
//! session row, the hold on the payer's funds, and the STT stream, moving to the agent's next
//! STT provider when one refuses at connect. Nothing is heard or billed until this succeeds.

use crate::admission::{Admitted, Via};
use crate::meter::Meter;
use crate::trace::OutcomeSpan;
use crate::turn::Failover;
use crate::{metrics as m, SessionDeps, SessionEvent};
use billing::store::SessionRow;
use billing::{ServicePlan, SessionPlan};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stt::{SttRequest, SttStream};
use tokio::sync::broadcast;

/// A refusal before or at session start: reported to the gateway, then the socket is closed.
pub(crate) struct Refusal {
    pub code: String,
    pub message: String,
}

impl Refusal {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_string(), message: message.into() }
    }
}

/// Why a session could not open, with its close code; `row_written` when the session row
/// and its hold exist and must be closed and released.
pub(crate) struct OpenFailed {
    pub refusal: Refusal,
    pub close: u16,
    pub row_written: bool,
}

fn failed(code: &str, message: impl Into<String>, close: u16, row_written: bool) -> OpenFailed {
    OpenFailed { refusal: Refusal::new(code, message), close, row_written }
}

/// An open session: its plan and everything the turn manager starts from.
pub(crate) struct Opened {
    pub plan: Arc<SessionPlan>,
    pub agent: crate::deps::AgentRun,
    pub llm: Arc<dyn llm::Llm>,
    pub tts: Arc<dyn tts::Tts>,
    pub meter: Meter,
    pub failover: Failover,
    pub stt_plan: ServicePlan,
    pub stt_stream: SttStream,
    /// The STT stream's trace span, ended by the turn manager with the stream.
    pub stt_span: OutcomeSpan,
    pub stt_rate: u32,
    pub tools: Option<Arc<crate::tools::ToolBox>>,
}

/// What the session is opened for.
pub(crate) struct OpenRequest<'a> {
    pub gateway: &'static str,
    pub session_id: &'a str,
    pub call_id: Option<&'a str>,
    pub admitted: &'a Admitted,
    pub input_rate: u32,
    pub events: &'a broadcast::Sender<SessionEvent>,
}

fn now_ms() -> i64 {
    billing::store::now_ms()
}

pub(crate) async fn open(deps: &SessionDeps, req: OpenRequest<'_>) -> Result<Opened, OpenFailed> {
    let started_at = Instant::now();
    let (plan, mut agent) = resolve_plan(deps, &req).await?;
    metrics::histogram!(m::PLAN_TIME).record(started_at.elapsed().as_secs_f64());
    let (Some(stt), Some(llm), Some(tts)) = (
        deps.providers.stt.get(&plan.stt.provider).cloned(),
        deps.providers.llm.get(&plan.llm.provider).cloned(),
        deps.providers.tts.get(&plan.tts.provider).cloned(),
    ) else {
        let message = "the agent names a provider this server has no adapter for";
        return Err(failed("unknown_provider", message, 1008, false));
    };
    let mut meter = Meter::from_plan(&plan).map_err(|e| failed(e.code(), e.to_string(), 1008, false))?;
    write_row(deps, &req, &plan).await?;
    hold_funds(deps, req.session_id, &plan, req.admitted.org_id.is_some()).await?;
    let mut failover = Failover::from_plan(&plan, &deps.providers);
    let stt_rate = deps.stt_sample_rate.unwrap_or(req.input_rate);
    let how = SttConnect { rate: stt_rate, timeout: agent.steps.stt_connect };
    let (stt_plan, stt_stream, stt_span) =
        connect_stt(plan.stt.clone(), stt, how, &mut failover, &mut meter, req.events).await?;
    metrics::histogram!(m::SETUP_TIME).record(started_at.elapsed().as_secs_f64());
    let tools = tool_box(deps, &req, &mut agent);
    Ok(Opened { plan, agent, llm, tts, meter, failover, stt_plan, stt_stream, stt_span, stt_rate, tools })
}

/// The agent's tools for this call, with the carrier line they act on (when the call came
/// through a carrier with the org's credential and a call id).
fn tool_box(
    deps: &SessionDeps,
    req: &OpenRequest<'_>,
    agent: &mut crate::deps::AgentRun,
) -> Option<Arc<crate::tools::ToolBox>> {
    if agent.tools.is_empty() {
        return None;
    }
    let line = match (&req.admitted.via, req.call_id) {
        (Via::Carrier { credentials: Some(creds) }, Some(call_id)) => {
            deps.access.carrier_urls.get(creds.carrier().as_str()).map(|base| crate::tools::CarrierLine {
                creds: creds.clone(),
                base: base.clone(),
                call_id: call_id.to_string(),
                public_url: deps.access.public_url.clone(),
            })
        }
        _ => None,
    };
    let secrets = std::mem::take(&mut agent.tool_secrets);
    let tools = std::mem::take(&mut agent.tools);
    let http = deps.access.http.clone();
    let allow_private = deps.access.allow_private_webhooks;
    Some(Arc::new(crate::tools::ToolBox::new(tools, secrets, http, line, req.session_id, allow_private)))
}

/// The plan, resolved once: this call keeps these keys and prices whatever changes later.
async fn resolve_plan(
    deps: &SessionDeps,
    req: &OpenRequest<'_>,
) -> Result<(Arc<SessionPlan>, crate::deps::AgentRun), OpenFailed> {
    // On the org's own carrier account (its number, its credential) the carrier bills the org
    // directly: no telephony line, only the platform's fee and markup. Platform numbers keep it.
    let own_carrier = matches!(req.admitted.via, Via::Carrier { credentials: Some(_) });
    let telephony = (req.gateway != "client" && !own_carrier).then_some(req.gateway);
    match deps.plan_for(req.session_id, &req.admitted.agent_id, telephony).await {
        Ok((plan, agent)) => Ok((Arc::new(plan), agent)),
        Err(e) => Err(failed(&e.code, e.message, 1008, false)),
    }
}

async fn write_row(deps: &SessionDeps, req: &OpenRequest<'_>, plan: &SessionPlan) -> Result<(), OpenFailed> {
    let row = SessionRow {
        session_id: req.session_id.to_string(),
        call_sid: req.call_id.map(str::to_string),
        org_id: plan.org_id.clone(),
        gateway: req.gateway.to_string(),
        status: "open".into(),
        started_at_ms: now_ms(),
        ended_at_ms: None,
        end_reason: None,
        plan_json: serde_json::to_string(plan).unwrap_or_else(|_| "{}".into()),
        node_id: Some(deps.node_id.clone()),
    };
    deps.store.open_session(&row).await.map_err(|e| {
        tracing::error!(error = %e, "cannot open session row");
        failed(e.code(), "the session store is unavailable", 1011, false)
    })
}

/// Reserve the next minute on the payer's funds before any provider is called. For an org's
/// call the funds check and the hold are one transaction, so simultaneous starts cannot
/// together hold more than the payer has; the server's own `default` agent (no org row,
/// platform-funded) holds plainly.
async fn hold_funds(
    deps: &SessionDeps,
    session_id: &str,
    plan: &SessionPlan,
    org_call: bool,
) -> Result<(), OpenFailed> {
    let amount = billing::hold::slice_estimate(plan);
    let placed = if org_call {
        deps.store.place_hold(session_id, &plan.payer_org_id, amount).await
    } else {
        deps.store.put_hold(session_id, &plan.payer_org_id, amount).await.map(|()| true)
    };
    match placed {
        Ok(true) => Ok(()),
        Ok(false) => Err(failed(
            "insufficient_funds",
            "the payer's available funds do not cover the call's next minute",
            1008,
            true,
        )),
        Err(e) => {
            tracing::error!(error = %e, "cannot place the session's hold");
            Err(failed("store_unavailable", "the session store is unavailable", 1011, true))
        }
    }
}

/// Connect STT before audio flows; a refusal or a timeout moves to the agent's next STT
/// fallback, and ends the call when none is left.
/// The STT stream request of `plan`: the session's audio rate, English.
pub(crate) fn stt_request(plan: &ServicePlan, rate: u32) -> SttRequest<'_> {
    SttRequest {
        base_url: &plan.base_url,
        key: &plan.credential.key,
        model: &plan.model,
        sample_rate: rate,
        language: "en",
    }
}

/// How STT is connected: the audio rate, and how long a provider may take to accept.
struct SttConnect {
    rate: u32,
    timeout: Duration,
}

async fn connect_stt(
    mut plan: ServicePlan,
    mut stt: Arc<dyn stt::Stt>,
    how: SttConnect,
    failover: &mut Failover,
    meter: &mut Meter,
    events: &broadcast::Sender<SessionEvent>,
) -> Result<(ServicePlan, SttStream, OutcomeSpan), OpenFailed> {
    loop {
        let mut span = OutcomeSpan::provider(&tracing::Span::current(), billing::Service::Stt, &plan);
        let (code, message) = match tokio::time::timeout(how.timeout, stt.connect(stt_request(&plan, how.rate))).await {
            Ok(Ok(stream)) => return Ok((plan, stream, span)),
            Ok(Err(e)) => {
                metrics::counter!(m::PROVIDER_ERRORS, "service" => billing::Service::Stt.as_str(), "code" => e.code())
                    .increment(1);
                (e.code().to_string(), e.to_string())
            }
            Err(_) => ("stt_timeout".to_string(), "the speech-to-text provider did not answer".to_string()),
        };
        span.fail(&code);
        let Some((next, adapter)) = failover.stt.pop_front() else {
            return Err(failed(&code, message, 1011, true));
        };
        tracing::warn!(from = %plan.provider, to = %next.provider, code = %code, "stt refused at connect; moving to the fallback");
        let ev = SessionEvent::Failover {
            service: billing::Service::Stt.to_string(),
            from: plan.provider.clone(),
            to: next.provider.clone(),
            code,
        };
        let _ = events.send(ev);
        meter.switch_service(billing::Service::Stt, &next, now_ms());
        plan = next;
        stt = adapter;
    }
}
