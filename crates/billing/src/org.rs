//! Orgs, plans and the access rules of DESIGN.md §4: three gates per model (priced, allowed on
//! the plan, a key available) and the choice between the org's own key and the platform's.

use crate::{ManagedKeys, RateTable};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A billing plan. Prices are integers (micro-USD; markup in basis points).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    pub id: String,
    pub monthly_credit_micros: i64,
    pub byok_allowed: bool,
    /// `None`: every priced model. Otherwise entries `service/provider/model`, with `*` as the
    /// model meaning every model of that provider.
    pub allowed_models: Option<Vec<String>>,
    /// Platform markup on BYOK lines, in basis points of the list price (500 = 5%).
    pub byok_markup_bps: i64,
    /// Platform fee per session minute in micro-USD (a `platform` usage line); 0 for none.
    #[serde(default)]
    pub platform_fee_micros_per_minute: i64,
    /// How many calls an org on this plan may run at once; 0 for no cap.
    #[serde(default)]
    pub max_concurrent_calls: i64,
}

impl Plan {
    pub fn allows(&self, service: &str, provider: &str, model: &str) -> bool {
        let model = crate::rates::priced_model(service, model);
        match &self.allowed_models {
            None => true,
            Some(list) => list.iter().any(|e| {
                let mut p = e.splitn(3, '/');
                matches!((p.next(), p.next(), p.next()), (Some(s), Some(pr), Some(m)) if s == service && pr == provider && (m == "*" || m == model))
            }),
        }
    }

    /// The plans every new store starts with. `free` follows the product documents' example:
    /// ElevenLabs flash and multilingual but not the pricier models, Cartesia and Polly in full.
    pub fn defaults() -> Vec<Plan> {
        let free_models = [
            "stt/deepgram/nova-3",
            "llm/openai/gpt-4o-mini",
            "tts/elevenlabs/eleven_flash_v2_5",
            "tts/elevenlabs/eleven_multilingual_v2",
            "tts/cartesia/*",
            "tts/polly/*",
            "stt/cartesia/*",
        ];
        vec![
            Plan {
                id: "free".into(),
                monthly_credit_micros: 1_000_000,
                byok_allowed: false,
                allowed_models: Some(free_models.iter().map(|s| s.to_string()).collect()),
                byok_markup_bps: 0,
                platform_fee_micros_per_minute: 0,
                max_concurrent_calls: 0,
            },
            Plan {
                id: "pro".into(),
                monthly_credit_micros: 20_000_000,
                byok_allowed: true,
                allowed_models: None,
                byok_markup_bps: 500,
                platform_fee_micros_per_minute: 0,
                max_concurrent_calls: 0,
            },
        ]
    }
}

/// What an org can spend now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Funds {
    pub credits_left_micros: i64,
    pub wallet_micros: i64,
    /// How far the wallet may go below zero (`allow_negative` policy); 0 for `end_call`.
    pub negative_limit_micros: i64,
    /// Reserved by other running sessions of the same payer.
    #[serde(default)]
    pub held_micros: i64,
}

impl Funds {
    /// Money left after what other sessions hold: credits, wallet and the allowed negative
    /// balance together.
    pub fn available(&self) -> i64 {
        self.credits_left_micros.max(0) + self.wallet_micros + self.negative_limit_micros - self.held_micros
    }

    pub fn can_spend(&self) -> bool {
        self.available() > 0
    }
}

/// A saved credential as the resolver sees it: sealed, never decrypted unless chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredCredential {
    pub id: String,
    /// The org the row belongs to (an agency owner's, for a sub-account), needed to open it.
    pub org_id: String,
    pub provider: String,
    pub name: String,
    pub last4: String,
    #[serde(skip)]
    pub sealed: String,
}

/// Everything about an org that decides how its sessions are served and billed.
#[derive(Debug, Clone)]
pub struct OrgContext {
    pub org_id: String,
    /// The org whose wallet and credits pay (an agency owner, when wallet deduction is on).
    pub payer_org_id: String,
    pub plan: Plan,
    pub use_own_keys: bool,
    pub credentials: Vec<StoredCredential>,
    /// service → credential id chosen for it.
    pub slots: HashMap<String, String>,
    pub funds: Funds,
}

impl OrgContext {
    /// The org's own key for `provider` serving `service`, when BYOK applies (on the plan, the
    /// toggle on): the key assigned to the service's slot, if it is this provider's. A slot
    /// without one falls back to the platform key for a `managed` provider; a BYOK-only
    /// provider has no platform key, so the org's first key of that provider serves it.
    pub fn byok_credential(&self, service: &str, provider: &str, managed: bool) -> Option<&StoredCredential> {
        if !self.plan.byok_allowed || !self.use_own_keys {
            return None;
        }
        let slot = self
            .slots
            .get(service)
            .and_then(|id| self.credentials.iter().find(|c| &c.id == id && c.provider == provider));
        match slot {
            Some(c) => Some(c),
            None if managed => None,
            None => self.credentials.iter().find(|c| c.provider == provider),
        }
    }

    pub fn has_key(&self, provider: &str) -> bool {
        self.credentials.iter().any(|c| c.provider == provider)
    }
}

/// The answer of the access check, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub allowed: bool,
    /// `ok`, `unknown_model`, `plan_restricted` or `byok_key_required`.
    pub reason: &'static str,
    pub service: String,
    pub provider: String,
    pub model: String,
    pub managed: bool,
    pub plan_allowed: bool,
    pub has_key: bool,
    pub requires_key: bool,
}

/// Three gates: priced, on the plan, a key (the org's, or the platform's for a managed provider).
pub fn access(
    rates: &RateTable,
    keys: &ManagedKeys,
    ctx: &OrgContext,
    service: &str,
    provider: &str,
    model: &str,
) -> Access {
    let rows = rates.model(service, provider, model);
    let managed = rows.is_some_and(|r| r.iter().any(|r| r.managed)) && keys.get(provider).is_some();
    let plan_allowed = ctx.plan.allows(service, provider, model);
    // `hasKey`: a key is saved; whether it will be used (toggle, plan) is `allowed`/`reason`.
    let has_key = ctx.has_key(provider);
    let usable_key = ctx.byok_credential(service, provider, managed).is_some();
    let requires_key = rows.is_some() && !managed;
    let reason = if rows.is_none() {
        "unknown_model"
    } else if !plan_allowed {
        "plan_restricted"
    } else if !managed && !usable_key {
        "byok_key_required"
    } else {
        "ok"
    };
    Access {
        allowed: reason == "ok",
        reason,
        service: service.to_string(),
        provider: provider.to_string(),
        model: model.to_string(),
        managed,
        plan_allowed,
        has_key,
        requires_key,
    }
}

/// The provider pricing `model` for `service`, when exactly one does.
pub fn provider_of(rates: &RateTable, service: &str, model: &str) -> Option<String> {
    let mut providers: Vec<&str> =
        rates.iter().filter(|r| r.service == service && r.model == model).map(|r| r.provider.as_str()).collect();
    providers.sort_unstable();
    providers.dedup();
    match providers.as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn rates() -> RateTable {
        RateTable::from_csv(include_str!("../../../assets/rates.csv")).unwrap()
    }

    fn ctx(plan: &str, own: bool, creds: &[&str]) -> OrgContext {
        OrgContext {
            org_id: "o".into(),
            payer_org_id: "o".into(),
            plan: Plan::defaults().into_iter().find(|p| p.id == plan).unwrap(),
            use_own_keys: own,
            credentials: creds
                .iter()
                .enumerate()
                .map(|(i, p)| StoredCredential {
                    id: format!("c{i}"),
                    org_id: "o".into(),
                    provider: p.to_string(),
                    name: "k".into(),
                    last4: "abcd".into(),
                    sealed: String::new(),
                })
                .collect(),
            slots: HashMap::new(),
            funds: Funds { credits_left_micros: 1, ..Default::default() },
        }
    }

    fn platform_keys() -> ManagedKeys {
        let k = ManagedKeys::default();
        for p in ["deepgram", "openai", "elevenlabs"] {
            k.set(p, SecretString::from("x".to_string()));
        }
        k
    }

    #[test]
    fn three_gates_in_order() {
        let (r, k) = (rates(), platform_keys());
        let a = access(&r, &k, &ctx("pro", true, &[]), "llm", "openai", "gpt-9");
        assert_eq!((a.allowed, a.reason), (false, "unknown_model"));
        let a = access(&r, &k, &ctx("free", true, &[]), "tts", "elevenlabs", "eleven_turbo_v2_5");
        assert_eq!((a.reason, a.plan_allowed), ("plan_restricted", false));
        let a = access(&r, &k, &ctx("pro", true, &[]), "llm", "groq", "llama-3.1-8b-instant");
        assert_eq!((a.reason, a.requires_key, a.managed), ("byok_key_required", true, false));
        let a = access(&r, &k, &ctx("pro", true, &["groq"]), "llm", "groq", "llama-3.1-8b-instant");
        assert_eq!((a.allowed, a.has_key), (true, true));
        let a = access(&r, &k, &ctx("free", true, &[]), "tts", "elevenlabs", "eleven_flash_v2_5");
        assert_eq!((a.allowed, a.managed), (true, true));
    }

    #[test]
    fn byok_needs_the_plan_feature_and_the_toggle() {
        let c = ctx("pro", false, &["openai"]);
        assert!(c.byok_credential("llm", "openai", true).is_none(), "toggle off");
        let c = ctx("free", true, &["openai"]);
        assert!(c.byok_credential("llm", "openai", true).is_none(), "free plan has no BYOK");
    }

    #[test]
    fn a_slot_without_a_key_falls_back_to_the_platform_for_managed_providers() {
        let mut c = ctx("pro", true, &["openai", "openai", "groq"]);
        assert!(c.byok_credential("llm", "openai", true).is_none(), "unassigned slot: platform key");
        assert_eq!(
            c.byok_credential("llm", "groq", false).map(|c| c.id.as_str()),
            Some("c2"),
            "BYOK-only: the org's key"
        );
        c.slots.insert("llm".into(), "c1".into());
        assert_eq!(c.byok_credential("llm", "openai", true).map(|c| c.id.as_str()), Some("c1"), "the slot's key");
        assert!(c.byok_credential("tts", "openai", true).is_none(), "another service's slot is not this one");
    }

    #[test]
    fn a_managed_provider_without_a_platform_key_is_not_managed() {
        let r = rates();
        let none = ManagedKeys::default();
        let a = access(&r, &none, &ctx("pro", true, &[]), "llm", "openai", "gpt-4o-mini");
        assert_eq!(a.reason, "byok_key_required");
        assert_eq!(provider_of(&r, "llm", "claude-sonnet-4-5").as_deref(), Some("anthropic"));
        assert_eq!(provider_of(&r, "llm", "gpt-4o-mini"), None, "openai and azure both price it: ambiguous");
    }
}
