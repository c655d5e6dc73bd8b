use crate::SessionHub;
use billing::store::Store;
use billing::tools::WEBHOOK_VAULT_PROVIDER as WEBHOOK;
use billing::{AgentSpec, PlanResolver};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Provider adapters by name, built once at startup from each crate's registry.
#[derive(Clone, Default)]
pub struct Providers {
    pub stt: HashMap<String, Arc<dyn stt::Stt>>,
    pub llm: HashMap<String, Arc<dyn llm::Llm>>,
    pub tts: HashMap<String, Arc<dyn tts::Tts>>,
}

impl Providers {
    /// Every provider the registries know, sharing one HTTP client (connection pool).
    pub fn from_registries(http: &reqwest::Client) -> Self {
        let mut p = Providers::default();
        for name in stt::registry::names() {
            if let Some(a) = stt::registry::build(name) {
                p.stt.insert(name.to_string(), a);
            }
        }
        for name in llm::registry::names() {
            if let Some(a) = llm::registry::build(name, http) {
                p.llm.insert(name.to_string(), a);
            }
        }
        for name in tts::registry::names() {
            if let Some(a) = tts::registry::build(name) {
                p.tts.insert(name.to_string(), a);
            }
        }
        p
    }
}

/// Everything a session needs from the server, shared by all sessions.
#[derive(Clone)]
pub struct SessionDeps {
    pub resolver: PlanResolver,
    pub store: Arc<dyn Store>,
    /// Commits every call's checkpoints, several per transaction (see [`crate::Committer`]).
    pub committer: crate::Committer,
    pub hub: SessionHub,
    pub providers: Providers,
    pub agent: AgentSpec,
    pub org_id: String,
    /// How often usage is written to the store while a call runs (a crash loses at most this).
    pub checkpoint_every: Duration,
    /// Rate of the linear16 audio sent to STT.
    /// `None`: send the gateway's own rate (no resampling: telephony audio stays 8 kHz, which
    /// STT providers accept natively).
    pub stt_sample_rate: Option<u32>,
    /// Rate of the PCM asked from TTS.
    /// `None`: ask for the gateway's own rate, so agent audio needs no resampling.
    pub tts_sample_rate: Option<u32>,
    /// Opens the orgs' saved provider keys; `None` when no master key is configured.
    pub vault: Option<Arc<billing::vault::Vault>>,
    /// Keeps the resolver's rate table current: an operator's change reaches every node before
    /// its next session, without a restart.
    pub rates: Arc<crate::rates_sync::RatesSync>,
    /// This node's id: recorded on its sessions, renewed as a lease in the store.
    pub node_id: String,
    /// Who may open a session, and the limits every session runs under.
    pub access: Arc<crate::AccessConfig>,
    /// Shutdown state: draining refuses new calls; `ending` asks live ones to hang up.
    pub drain: Arc<crate::drain::Drain>,
    /// Keep what was said on each call in the store (`--transcripts false` for operators who
    /// may not keep call content).
    pub keep_transcripts: bool,
    /// Where usage the store never took is kept until the next start (`None`: only logged).
    pub spool: Option<Arc<crate::spool::Spool>>,
}

/// How an agent's calls run, beside the plan: fixed at session start like the plan.
pub(crate) struct AgentRun {
    pub max_call: Duration,
    pub steps: crate::turn::StepLimits,
    pub apology: String,
    pub tools: Vec<billing::AgentTool>,
    /// The webhook secrets the tools name, opened from the org's vault.
    pub tool_secrets: crate::tools::WebhookSecrets,
}

impl AgentRun {
    fn of(spec: &AgentSpec, tool_secrets: crate::tools::WebhookSecrets) -> Self {
        Self {
            max_call: spec.max_call(),
            steps: crate::turn::StepLimits::for_agent(&spec.timeouts),
            apology: spec.apology_line.clone().unwrap_or_else(|| crate::turn::DEFAULT_APOLOGY.to_string()),
            tools: spec.tools.clone(),
            tool_secrets,
        }
    }
}

/// Why a session could not get a plan: a stable code and a message without secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRefusal {
    pub code: String,
    pub message: String,
}

impl PlanRefusal {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_string(), message: message.into() }
    }
}

impl SessionDeps {
    /// Make sure the rate table is current before using it (see [`crate::rates_sync`]).
    pub async fn refresh_rates(&self) {
        self.rates.before_use(self.store.as_ref(), &self.resolver).await;
    }

    /// Reload the rate table now: after this node changed it, so its own next answer shows the
    /// change whether or not the notification has arrived yet.
    pub async fn reload_rates(&self) {
        self.rates.reload(self.store.as_ref(), &self.resolver, "changed here").await;
    }

    /// The plan of a new session for `agent_id`, and how the agent runs (call length, step
    /// limits, apology line): `default` is the server's own agent on platform keys; any other
    /// id is a registered agent, resolved for its org (BYOK, plan gates, agency rules, funds).
    /// Done once, at session start.
    pub(crate) async fn plan_for(
        &self,
        session_id: &str,
        agent_id: &str,
        telephony: Option<&str>,
    ) -> Result<(billing::SessionPlan, AgentRun), PlanRefusal> {
        self.refresh_rates().await;
        if agent_id == "default" {
            let plan = self
                .resolver
                .resolve(session_id, &self.org_id, &self.agent, telephony)
                .map_err(|e| PlanRefusal::new(e.code(), e.to_string()))?;
            return Ok((plan, AgentRun::of(&self.agent, Default::default())));
        }
        let found = self.store.agent(agent_id).await.map_err(|e| {
            tracing::error!(error = %e, "agent lookup failed");
            PlanRefusal::new("store_unavailable", "the session store is unavailable")
        })?;
        let (org_id, spec_json) =
            found.ok_or_else(|| PlanRefusal::new("unknown_agent", format!("no agent {agent_id:?}")))?;
        let spec: AgentSpec = serde_json::from_str(&spec_json)
            .map_err(|_| PlanRefusal::new("agent_corrupt", "the agent's stored configuration is unreadable"))?;
        let ctx = billing::store::load_context(self.store.as_ref(), &org_id, None).await.map_err(|e| {
            tracing::error!(error = %e, "org context failed");
            PlanRefusal::new("org_unavailable", "the agent's org could not be loaded")
        })?;
        let plan = self
            .resolver
            .resolve_for(session_id, &ctx, &spec, telephony, self.vault.as_deref())
            .map_err(|e| PlanRefusal::new(e.code(), e.to_string()))?;
        let secrets = crate::tools::WebhookSecrets::open(&spec.tools, &ctx.credentials, self.vault.as_deref())
            .map_err(|name| {
                PlanRefusal::new(
                    "webhook_secret_missing",
                    format!("the agent's webhook tools need the vault secret {WEBHOOK:?}/{name:?}"),
                )
            })?;
        Ok((plan, AgentRun::of(&spec, secrets)))
    }
}
