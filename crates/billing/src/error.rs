use thiserror::Error;

/// Why a plan could not be made or a price not computed. `code()` is the stable machine code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BillingError {
    #[error("model {model} of {provider} ({service}) is not in the rate table")]
    UnknownModel { service: String, provider: String, model: String },
    #[error("no price for {service}/{provider}/{model} in unit {unit}")]
    MissingPrice { service: String, provider: String, model: String, unit: String },
    #[error("provider {0} needs the org's own key: add one")]
    ByokKeyRequired(String),
    #[error("no platform key is configured for provider {0}")]
    ManagedKeyMissing(String),
    #[error("unknown provider {0}")]
    UnknownProvider(String),
    #[error("rate table line {line}: {reason}")]
    BadRateRow { line: usize, reason: String },
    #[error("model {model} of {provider} is not on the {plan} plan")]
    PlanRestricted { provider: String, model: String, plan: String },
    #[error("the org has no credits or wallet balance left")]
    InsufficientFunds,
    #[error("the org's {0} key cannot be used: {1}")]
    Vault(String, String),
    #[error("amount overflow")]
    Overflow,
}

impl BillingError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownModel { .. } => "unknown_model",
            Self::MissingPrice { .. } => "missing_price",
            Self::ByokKeyRequired(_) => "byok_key_required",
            Self::ManagedKeyMissing(_) => "managed_key_missing",
            Self::UnknownProvider(_) => "unknown_provider",
            Self::BadRateRow { .. } => "bad_rate_row",
            Self::PlanRestricted { .. } => "plan_restricted",
            Self::InsufficientFunds => "insufficient_funds",
            Self::Vault(..) => "vault_error",
            Self::Overflow => "overflow",
        }
    }
}
