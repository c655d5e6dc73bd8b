//! Turns an agent's choices into a [`SessionPlan`]: the one place that decides provider, key,
//! billing class and prices for a session.

use crate::keys::last4;
use crate::plan::TelephonyPlan;
use crate::{BilledTo, BillingError, Credential, ManagedKeys, RateTable, ServicePlan, SessionPlan};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use url::Url;

/// Provider + model (+ voice for TTS) chosen for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceChoice {
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub voice: String,
}

/// What an agent runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub stt: ServiceChoice,
    pub llm: ServiceChoice,
    pub tts: ServiceChoice,
    pub prompt: String,
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            stt: ServiceChoice {
                provider: "deepgram".into(),
                model: "nova-3".into(),
                voice: String::new(),
            },
            llm: ServiceChoice {
                provider: "openai".into(),
                model: "gpt-4o-mini".into(),
                voice: String::new(),
            },
            tts: ServiceChoice {
                provider: "elevenlabs".into(),
                model: "eleven_flash_v2_5".into(),
                voice: "21m00Tcm4TlvDq8ikWAM".into(),
            },
            prompt: "You are a helpful phone agent for a restaurant. Answer briefly.".into(),
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
        Self {
            rates: Arc::new(RwLock::new(rates)),
            keys,
            base_urls: Arc::new(base_urls),
        }
    }

    pub fn keys(&self) -> &ManagedKeys {
        &self.keys
    }

    /// Replace the whole rate table (operator edit); affects sessions resolved afterwards.
    pub fn set_rates(&self, rates: RateTable) {
        if let Ok(mut r) = self.rates.write() {
            *r = rates;
        }
    }

    /// Resolve every service of `agent` for a new session. Fails before any provider is called.
    pub fn resolve(
        &self,
        session_id: &str,
        org_id: &str,
        agent: &AgentSpec,
        telephony: Option<&str>,
    ) -> Result<SessionPlan, BillingError> {
        let rates = self.rates.read().map_err(|_| BillingError::Overflow)?;
        let stt = self.service(&rates, "stt", &agent.stt)?;
        let llm = self.service(&rates, "llm", &agent.llm)?;
        let tts = self.service(&rates, "tts", &agent.tts)?;
        let telephony = match telephony {
            Some(carrier) => {
                let rows = rates
                    .iter()
                    .filter(|r| r.service == "telephony" && r.provider == carrier);
                let rows: Vec<_> = rows.cloned().collect();
                // A carrier without a price is billed nothing by us, but never silently as zero:
                // no telephony line is written at all.
                rows.first().map(|r| TelephonyPlan {
                    provider: carrier.to_string(),
                    model: r.model.clone(),
                    billed_to: BilledTo::Managed,
                    rates: vec![r.clone()],
                })
            }
            None => None,
        };
        Ok(SessionPlan {
            session_id: session_id.to_string(),
            org_id: org_id.to_string(),
            stt,
            llm,
            tts,
            telephony,
            prompt: agent.prompt.clone(),
        })
    }

    fn service(
        &self,
        rates: &RateTable,
        service: &str,
        choice: &ServiceChoice,
    ) -> Result<ServicePlan, BillingError> {
        let rows = rates
            .model(service, &choice.provider, &choice.model)
            .ok_or_else(|| BillingError::UnknownModel {
                service: service.to_string(),
                provider: choice.provider.clone(),
                model: choice.model.clone(),
            })?;
        let base_url = self
            .base_urls
            .get(&choice.provider)
            .cloned()
            .ok_or_else(|| BillingError::UnknownProvider(choice.provider.clone()))?;
        if !rows.iter().any(|r| r.managed) {
            return Err(BillingError::ByokKeyRequired(choice.provider.clone()));
        }
        let key = self
            .keys
            .get(&choice.provider)
            .ok_or_else(|| BillingError::ManagedKeyMissing(choice.provider.clone()))?;
        let credential = Credential {
            last4: last4(&key),
            key,
            id: format!("managed:{}", choice.provider),
        };
        Ok(ServicePlan {
            provider: choice.provider.clone(),
            model: choice.model.clone(),
            voice: choice.voice.clone(),
            base_url,
            credential,
            billed_to: BilledTo::Managed,
            rates: rows.to_vec(),
        })
    }
}
