//! Usage records: one priced line item of one session, idempotent by `session_id:line:seq`.

use crate::MicroUsd;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Stt,
    Tts,
    Llm,
    Telephony,
    Platform,
}

impl Service {
    /// The services a session's providers serve, in pipeline order (an agent names one each).
    pub const PROVIDED: [Service; 3] = [Self::Stt, Self::Llm, Self::Tts];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stt => "stt",
            Self::Tts => "tts",
            Self::Llm => "llm",
            Self::Telephony => "telephony",
            Self::Platform => "platform",
        }
    }

    pub fn parse(s: &str) -> Option<Service> {
        Some(match s {
            "stt" => Self::Stt,
            "tts" => Self::Tts,
            "llm" => Self::Llm,
            "telephony" => Self::Telephony,
            "platform" => Self::Platform,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Service {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownService(s.to_string()))
    }
}

/// A service name that is none of [`Service`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {0:?} (stt, tts, llm, telephony, platform)")]
pub struct UnknownService(pub String);

/// Who pays a line: plan credits on a platform key, the org's own key, or the prepaid wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BilledTo {
    Managed,
    Byok,
    Wallet,
}

impl BilledTo {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Managed => "managed",
            Self::Byok => "byok",
            Self::Wallet => "wallet",
        }
    }

    pub fn parse(s: &str) -> Option<BilledTo> {
        Some(match s {
            "managed" => Self::Managed,
            "byok" => Self::Byok,
            "wallet" => Self::Wallet,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UsageUnit {
    AudioSeconds,
    Characters,
    InputTokens,
    OutputTokens,
    Minutes,
}

impl UsageUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AudioSeconds => "audio_seconds",
            Self::Characters => "characters",
            Self::InputTokens => "input_tokens",
            Self::OutputTokens => "output_tokens",
            Self::Minutes => "minutes",
        }
    }

    pub fn parse(s: &str) -> Option<UsageUnit> {
        Some(match s {
            "audio_seconds" => Self::AudioSeconds,
            "characters" => Self::Characters,
            "input_tokens" => Self::InputTokens,
            "output_tokens" => Self::OutputTokens,
            "minutes" => Self::Minutes,
            _ => return None,
        })
    }

    /// Integer metering atoms → the reported quantity (ms → seconds or minutes).
    pub fn quantity_from_atoms(self, atoms: i64) -> f64 {
        match self {
            Self::AudioSeconds => atoms as f64 / 1000.0,
            Self::Minutes => atoms as f64 / 60_000.0,
            Self::Characters | Self::InputTokens | Self::OutputTokens => atoms as f64,
        }
    }
}

/// One priced usage line. `amount_micros` is the price of this record's `quantity` alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageRecord {
    pub session_id: String,
    /// Line within the session, e.g. `stt`, `llm.input`, `telephony`.
    pub line: String,
    pub seq: u32,
    pub service: Service,
    pub provider: String,
    pub model: String,
    pub quantity: f64,
    /// Integer metering atoms behind `quantity` (ms, characters or tokens).
    pub quantity_atoms: i64,
    pub unit: UsageUnit,
    pub billed_to: BilledTo,
    /// What the org is charged for this record (for `byok`: the platform markup only).
    pub amount_micros: MicroUsd,
    /// The provider's list price of the quantity, whoever pays it.
    pub list_micros: MicroUsd,
    /// The org whose credits or wallet paid.
    pub org_id: String,
    /// Quantity counted or estimated locally rather than reported by the provider.
    pub estimated: bool,
    /// Which credential served the line (connection id, never the key).
    pub credential_id: String,
    pub created_at_ms: i64,
}

impl UsageRecord {
    /// The idempotency key.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.session_id, self.line, self.seq)
    }
}
