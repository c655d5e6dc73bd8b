//! Turns an agent's choices into a [`SessionPlan`]: the one place that decides provider, key,
//! billing class and prices for a session.

use crate::keys::last4;
use crate::org::{Funds, OrgContext, Plan};
use crate::plan::{FallbackPlans, TelephonyPlan};
use crate::vault::Vault;
use crate::{BilledTo, BillingError, Credential, ManagedKeys, RateTable, Service, ServicePlan, SessionPlan};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use url::Url;

/// Provider + model (+ voice for TTS) chosen for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceChoice {
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub voice: String,
}

/// What an agent runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentSpec {
    pub stt: ServiceChoice,
    pub llm: ServiceChoice,
    pub tts: ServiceChoice,
    pub prompt: String,
    /// Providers to move to, in order, when a service's provider fails during a call.
    #[serde(default, skip_serializing_if = "Fallbacks::is_empty")]
    pub fallbacks: Fallbacks,
    /// The longest a call may run before it is ended (`max_duration`); default two hours.
    #[serde(default, rename = "maxCallSecs", skip_serializing_if = "Option::is_none")]
    pub max_call_secs: Option<u64>,
    /// Limits on each provider step; a step over its limit is a provider failure.
    #[serde(default, skip_serializing_if = "Timeouts::is_default")]
    pub timeouts: Timeouts,
    /// What the agent says when no provider can answer a turn (instead of silence).
    #[serde(default, rename = "apologyLine", skip_serializing_if = "Option::is_none")]
    pub apology_line: Option<String>,
    /// Functions the model may call during a call ([`crate::tools`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<crate::AgentTool>,
}

/// Per-agent overrides of the provider step limits, in milliseconds; unset = the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// From the LLM request to its first token.
    pub llm_first_token_ms: Option<u64>,
    /// Between two LLM tokens.
    pub llm_stall_ms: Option<u64>,
    /// The TTS stream's handshake.
    pub tts_connect_ms: Option<u64>,
    /// From text sent to TTS to its first audio.
    pub tts_first_audio_ms: Option<u64>,
    /// Between two TTS audio chunks while text is waiting to be voiced.
    pub tts_stall_ms: Option<u64>,
    /// From the end of the caller's speech to any word from STT.
    pub stt_result_ms: Option<u64>,
    /// The STT stream's handshake.
    pub stt_connect_ms: Option<u64>,
}

impl Timeouts {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A call with no agent-set limit ends after two hours.
pub const DEFAULT_MAX_CALL_SECS: u64 = 2 * 60 * 60;

impl AgentSpec {
    pub fn max_call(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.max_call_secs.unwrap_or(DEFAULT_MAX_CALL_SECS).max(1))
    }
}

/// Fallback choices per service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fallbacks {
    #[serde(default)]
    pub stt: Vec<ServiceChoice>,
    #[serde(default)]
    pub llm: Vec<ServiceChoice>,
    #[serde(default)]
    pub tts: Vec<ServiceChoice>,
}

impl Fallbacks {
    pub fn is_empty(&self) -> bool {
        self.stt.is_empty() && self.llm.is_empty() && self.tts.is_empty()
    }
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            stt: ServiceChoice { provider: "deepgram".into(), model: "nova-3".into(), voice: String::new() },
            llm: ServiceChoice { provider: "openai".into(), model: "gpt-4o-mini".into(), voice: String::new() },
            tts: ServiceChoice {
                provider: "elevenlabs".into(),
                model: "eleven_flash_v2_5".into(),
                voice: "21m00Tcm4TlvDq8ikWAM".into(),
            },
            prompt: "You are a helpful phone agent for a restaurant. Answer briefly.".into(),
            fallbacks: Fallbacks::default(),
            max_call_secs: None,
            timeouts: Timeouts::default(),
            apology_line: None,
            tools: Vec::new(),
        }
    }
}

/// Resolves session plans from the rate table, the managed keys and provider base URLs.
/// Cheap to clone; rates and keys can change underneath, plans already made do not.
#[derive(Clone)]
pub struct PlanResolver {
    rates: Arc<RwLock<RateTable>>,
    keys: ManagedKeys,
    base_urls: Arc<HashMap<String, Url>>,
}

impl PlanResolver {
    pub fn new(rates: RateTable, keys: ManagedKeys, base_urls: HashMap<String, Url>) -> Self {
        Self { rates: Arc::new(RwLock::new(rates)), keys, base_urls: Arc::new(base_urls) }
    }

    pub fn keys(&self) -> &ManagedKeys {
        &self.keys
    }

    /// Where a provider is reached (its real API, or a simulator in sandbox and tests).
    pub fn base_url(&self, service: &str, provider: &str) -> Option<&Url> {
        self.base_urls.get(&format!("{service}.{provider}")).or_else(|| self.base_urls.get(provider))
    }

    /// Replace the whole rate table (operator edit); affects sessions resolved afterwards.
    pub fn set_rates(&self, rates: RateTable) {
        if let Ok(mut r) = self.rates.write() {
            *r = rates;
        }
    }

    pub fn rates(&self) -> RateTable {
        self.rates.read().map(|r| r.clone()).unwrap_or_default()
    }

    /// The org context of the built-in sandbox org: platform keys, no spending limit.
    pub fn sandbox_context(org_id: &str) -> OrgContext {
        OrgContext {
            org_id: org_id.to_string(),
            payer_org_id: org_id.to_string(),
            plan: Plan {
                id: "sandbox".into(),
                monthly_credit_micros: i64::MAX / 4,
                byok_allowed: false,
                allowed_models: None,
                byok_markup_bps: 0,
                platform_fee_micros_per_minute: 0,
                max_concurrent_calls: 0,
            },
            use_own_keys: false,
            credentials: Vec::new(),
            slots: HashMap::new(),
            funds: Funds {
                credits_left_micros: i64::MAX / 4,
                wallet_micros: 0,
                negative_limit_micros: 0,
                held_micros: 0,
            },
        }
    }

    /// Resolve with platform keys only, for the sandbox org.
    pub fn resolve(
        &self,
        session_id: &str,
        org_id: &str,
        agent: &AgentSpec,
        telephony: Option<&str>,
    ) -> Result<SessionPlan, BillingError> {
        self.resolve_for(session_id, &Self::sandbox_context(org_id), agent, telephony, None)
    }

    /// Resolve every service of `agent` for a new session of the org in `ctx`: the org's own
    /// key (BYOK) where its plan, toggle and slots say so, else the platform key of a managed
    /// provider — never a platform key for a BYOK-only provider. Fails before any provider is
    /// called.
    pub fn resolve_for(
        &self,
        session_id: &str,
        ctx: &OrgContext,
        agent: &AgentSpec,
        telephony: Option<&str>,
        vault: Option<&Vault>,
    ) -> Result<SessionPlan, BillingError> {
        let rates = self.rates.read().map_err(|_| BillingError::Overflow)?;
        let stt = self.service(&rates, ctx, vault, Service::Stt, &agent.stt)?;
        let llm = self.service(&rates, ctx, vault, Service::Llm, &agent.llm)?;
        let tts = self.service(&rates, ctx, vault, Service::Tts, &agent.tts)?;
        // Fallbacks are resolved now too, so a call that fails over keeps the keys it started
        // with; one that cannot be resolved (no key, not on the plan) is left out, not fatal.
        let resolve_all = |service: Service, choices: &[ServiceChoice]| -> Vec<ServicePlan> {
            choices
                .iter()
                .filter_map(|c| match self.service(&rates, ctx, vault, service, c) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::warn!(service = service.as_str(), provider = %c.provider, code = e.code(), "fallback left out of the plan");
                        None
                    }
                })
                .collect()
        };
        let fallbacks = FallbackPlans {
            stt: resolve_all(Service::Stt, &agent.fallbacks.stt),
            llm: resolve_all(Service::Llm, &agent.fallbacks.llm),
            tts: resolve_all(Service::Tts, &agent.fallbacks.tts),
        };
        let costs_money = [&stt, &llm, &tts].iter().any(|s| s.billed_to != BilledTo::Byok || s.markup_bps > 0);
        if costs_money && !ctx.funds.can_spend() {
            return Err(BillingError::InsufficientFunds);
        }
        let telephony = match telephony {
            Some(carrier) => {
                let rows: Vec<_> = rates
                    .iter()
                    .filter(|r| r.service == Service::Telephony.as_str() && r.provider == carrier)
                    .cloned()
                    .collect();
                // A carrier without a price gets no telephony line at all, never a zero price.
                rows.first().map(|r| TelephonyPlan {
                    provider: carrier.to_string(),
                    model: r.model.clone(),
                    billed_to: BilledTo::Managed,
                    rates: vec![r.clone()],
                })
            }
            None => None,
        };
        let platform = (ctx.plan.platform_fee_micros_per_minute > 0).then(|| crate::plan::TelephonyPlan {
            provider: "switchboard".into(),
            model: ctx.plan.id.clone(),
            billed_to: BilledTo::Managed,
            rates: vec![crate::Rate {
                service: "platform".into(),
                provider: "switchboard".into(),
                model: ctx.plan.id.clone(),
                unit: crate::RateUnit::Minute,
                price: crate::MicroUsd(ctx.plan.platform_fee_micros_per_minute),
                managed: true,
                unverified: false,
            }],
        });
        Ok(SessionPlan {
            session_id: session_id.to_string(),
            org_id: ctx.org_id.clone(),
            platform,
            payer_org_id: ctx.payer_org_id.clone(),
            stt,
            llm,
            tts,
            telephony,
            prompt: agent.prompt.clone(),
            fallbacks,
        })
    }

    /// Resolve one LLM for a single API request (the OpenAI-compatible endpoint) by the same
    /// rules as a session's LLM: plan gates, BYOK toggle and slots, no silent platform fallback,
    /// and funds when the platform pays or charges a markup.
    pub fn resolve_llm(
        &self,
        ctx: &OrgContext,
        choice: &ServiceChoice,
        vault: Option<&Vault>,
    ) -> Result<ServicePlan, BillingError> {
        let rates = self.rates.read().map_err(|_| BillingError::Overflow)?;
        let llm = self.service(&rates, ctx, vault, Service::Llm, choice)?;
        if (llm.billed_to != BilledTo::Byok || llm.markup_bps > 0) && !ctx.funds.can_spend() {
            return Err(BillingError::InsufficientFunds);
        }
        Ok(llm)
    }

    fn service(
        &self,
        rates: &RateTable,
        ctx: &OrgContext,
        vault: Option<&Vault>,
        service: Service,
        choice: &ServiceChoice,
    ) -> Result<ServicePlan, BillingError> {
        let service = service.as_str();
        let rows = rates.model(service, &choice.provider, &choice.model).ok_or_else(|| BillingError::UnknownModel {
            service: service.to_string(),
            provider: choice.provider.clone(),
            model: choice.model.clone(),
        })?;
        if !ctx.plan.allows(service, &choice.provider, &choice.model) {
            return Err(BillingError::PlanRestricted {
                provider: choice.provider.clone(),
                model: choice.model.clone(),
                plan: ctx.plan.id.clone(),
            });
        }
        let base_url = self
            .base_url(service, &choice.provider)
            .cloned()
            .ok_or_else(|| BillingError::UnknownProvider(choice.provider.clone()))?;
        let managed = rows.iter().any(|r| r.managed);
        let (credential, billed_to, markup_bps) = if let Some(c) =
            ctx.byok_credential(service, &choice.provider, managed)
        {
            let vault =
                vault.ok_or_else(|| BillingError::Vault(choice.provider.clone(), "no master key configured".into()))?;
            let key = vault
                .open(&c.org_id, &c.provider, &c.sealed)
                .map_err(|e| BillingError::Vault(choice.provider.clone(), e.to_string()))?;
            (Credential { key, id: c.id.clone(), last4: c.last4.clone() }, BilledTo::Byok, ctx.plan.byok_markup_bps)
        } else if managed {
            let key = self
                .keys
                .get(&choice.provider)
                .ok_or_else(|| BillingError::ManagedKeyMissing(choice.provider.clone()))?;
            (Credential { last4: last4(&key), key, id: format!("managed:{}", choice.provider) }, BilledTo::Managed, 0)
        } else {
            // A BYOK-only provider and no key of the org's: never a silent platform fallback.
            return Err(BillingError::ByokKeyRequired(choice.provider.clone()));
        };
        let free = rows.iter().all(|r| r.price.0 == 0);
        let paid_sibling = choice.model.strip_suffix(":free").and_then(|m| rates.model(service, &choice.provider, m));
        let markup_rates = match paid_sibling {
            Some(paid) if free => paid.to_vec(),
            _ => rows.to_vec(),
        };
        Ok(ServicePlan {
            provider: choice.provider.clone(),
            model: choice.model.clone(),
            voice: choice.voice.clone(),
            base_url,
            credential,
            billed_to,
            markup_bps,
            rates: rows.to_vec(),
            markup_rates,
        })
    }
}
