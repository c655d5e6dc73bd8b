//! What serves each service of one session, resolved once at session start.

use crate::{BilledTo, BillingError, Rate, RateUnit};
use secrecy::SecretString;
use serde::Serialize;
use url::Url;

/// A provider key held for one session. `Debug` and `Serialize` never show the key.
#[derive(Clone)]
pub struct Credential {
    pub key: SecretString,
    /// Stable id of where the key came from (`managed:deepgram`, a BYOK connection id).
    pub id: String,
    pub last4: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("id", &self.id).field("last4", &self.last4).finish()
    }
}

impl Serialize for Credential {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Credential", 2)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("last4", &self.last4)?;
        st.end()
    }
}

/// One service of a session: provider, model, where to reach it, with which key, who pays,
/// and the prices as they were when the session opened.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePlan {
    pub provider: String,
    pub model: String,
    /// TTS voice id; empty for other services.
    pub voice: String,
    pub base_url: Url,
    pub credential: Credential,
    pub billed_to: BilledTo,
    /// Platform markup on this line in basis points of list price (BYOK lines).
    pub markup_bps: i64,
    pub rates: Vec<Rate>,
    /// What the markup is a percentage of: the model's own rates, or for a free model
    /// (`…:free`, priced 0) its paid sibling's, so free models still carry the platform fee.
    pub markup_rates: Vec<Rate>,
}

impl ServicePlan {
    pub fn rate(&self, unit: RateUnit) -> Result<&Rate, BillingError> {
        self.rates.iter().find(|r| r.unit == unit).ok_or_else(|| BillingError::MissingPrice {
            service: self.rates.first().map(|r| r.service.clone()).unwrap_or_default(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            unit: unit.as_str().to_string(),
        })
    }
}

/// Telephony line of a session: which carrier's per-minute rate applies.
#[derive(Debug, Clone, Serialize)]
pub struct TelephonyPlan {
    pub provider: String,
    pub model: String,
    pub billed_to: BilledTo,
    pub rates: Vec<Rate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionPlan {
    pub session_id: String,
    pub org_id: String,
    /// Whose credits and wallet pay (the agency owner for a wallet-deducting sub-account).
    pub payer_org_id: String,
    pub stt: ServicePlan,
    pub llm: ServicePlan,
    pub tts: ServicePlan,
    pub telephony: Option<TelephonyPlan>,
    /// The plan's per-minute platform fee, when it has one (priced like a carrier line).
    pub platform: Option<TelephonyPlan>,
    /// The agent's system prompt.
    pub prompt: String,
    /// Where each service moves when its provider fails mid-call, in order.
    pub fallbacks: FallbackPlans,
}

/// Resolved fallbacks per service (keys chosen at session start, like the primaries).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FallbackPlans {
    pub stt: Vec<ServicePlan>,
    pub llm: Vec<ServicePlan>,
    pub tts: Vec<ServicePlan>,
}
