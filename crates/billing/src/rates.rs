//! The rate table: the source of truth for what each (service, provider, model) costs and
//! whether the platform holds a key for it (`managed`).

use crate::{BillingError, MicroUsd, UsageUnit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The unit a price is quoted in. Each maps to an integer metering atom (ms, characters, tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RateUnit {
    AudioMinute,
    AudioHour,
    KiloCharacters,
    MegaInputTokens,
    MegaOutputTokens,
    Minute,
}

impl RateUnit {
    pub fn parse(s: &str) -> Option<RateUnit> {
        Some(match s {
            "audio_minute" => Self::AudioMinute,
            "audio_hour" => Self::AudioHour,
            "kilo_characters" => Self::KiloCharacters,
            "mega_input_tokens" => Self::MegaInputTokens,
            "mega_output_tokens" => Self::MegaOutputTokens,
            "minute" => Self::Minute,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AudioMinute => "audio_minute",
            Self::AudioHour => "audio_hour",
            Self::KiloCharacters => "kilo_characters",
            Self::MegaInputTokens => "mega_input_tokens",
            Self::MegaOutputTokens => "mega_output_tokens",
            Self::Minute => "minute",
        }
    }

    /// Metering atoms in one priced unit: ms for time, characters, tokens.
    pub fn atoms_per_unit(self) -> i64 {
        match self {
            Self::AudioMinute | Self::Minute => 60_000,
            Self::AudioHour => 3_600_000,
            Self::KiloCharacters => 1_000,
            Self::MegaInputTokens | Self::MegaOutputTokens => 1_000_000,
        }
    }

    /// The unit usage records of this rate are reported in.
    pub fn usage_unit(self) -> UsageUnit {
        match self {
            Self::AudioMinute | Self::AudioHour => UsageUnit::AudioSeconds,
            Self::KiloCharacters => UsageUnit::Characters,
            Self::MegaInputTokens => UsageUnit::InputTokens,
            Self::MegaOutputTokens => UsageUnit::OutputTokens,
            Self::Minute => UsageUnit::Minutes,
        }
    }
}

/// One row of the rate table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rate {
    pub service: String,
    pub provider: String,
    pub model: String,
    pub unit: RateUnit,
    /// Price of one `unit`, in micro-USD.
    pub price: MicroUsd,
    /// The platform holds a key for this provider; false means BYOK only.
    pub managed: bool,
    /// Placeholder price an operator must confirm.
    pub unverified: bool,
}

/// All rates, indexed by `(service, provider, model)`.
#[derive(Debug, Clone, Default)]
pub struct RateTable {
    rows: BTreeMap<(String, String, String), Vec<Rate>>,
}

/// The model a rate row prices: an LLM model asked through another API of the same provider
/// (`responses:gpt-4.1-mini`, OpenAI's Responses API) bills as the model itself.
pub fn priced_model<'a>(service: &str, model: &'a str) -> &'a str {
    if service == crate::Service::Llm.as_str() {
        model.strip_prefix("responses:").unwrap_or(model)
    } else {
        model
    }
}

impl RateTable {
    /// Parse the seed CSV (`service,provider,model,unit,price_usd,managed,source`).
    pub fn from_csv(text: &str) -> Result<RateTable, BillingError> {
        let mut table = RateTable::default();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if i == 0 || line.trim().is_empty() {
                continue;
            }
            let bad = |reason: &str| BillingError::BadRateRow { line: line_no, reason: reason.to_string() };
            let cols: Vec<&str> = line.splitn(7, ',').collect();
            let [service, provider, model, unit, price, managed, source] = cols[..] else {
                return Err(bad("expected 7 columns"));
            };
            let unit = RateUnit::parse(unit).ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?;
            let price = MicroUsd::parse_usd(price).map_err(|e| bad(&e))?;
            let managed = match managed {
                "true" => true,
                "false" => false,
                other => return Err(bad(&format!("managed must be true or false, got {other:?}"))),
            };
            table.insert(Rate {
                service: service.to_string(),
                provider: provider.to_string(),
                model: model.to_string(),
                unit,
                price,
                managed,
                unverified: source.contains("UNVERIFIED"),
            });
        }
        Ok(table)
    }

    pub fn insert(&mut self, rate: Rate) {
        let key = (rate.service.clone(), rate.provider.clone(), rate.model.clone());
        let rows = self.rows.entry(key).or_default();
        rows.retain(|r| r.unit != rate.unit);
        rows.push(rate);
    }

    /// Every priced unit of one model (see [`priced_model`]); `None` when it is not in the table.
    pub fn model(&self, service: &str, provider: &str, model: &str) -> Option<&[Rate]> {
        let model = priced_model(service, model);
        self.rows.get(&(service.to_string(), provider.to_string(), model.to_string())).map(Vec::as_slice)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rate> {
        self.rows.values().flatten()
    }

    pub fn len(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_file_parses_with_exact_prices() {
        let text = include_str!("../../../assets/rates.csv");
        let t = RateTable::from_csv(text).unwrap();
        assert!(t.len() > 100);
        let dg = t.model("stt", "deepgram", "nova-3").unwrap();
        assert_eq!(dg[0].unit, RateUnit::AudioMinute);
        assert_eq!(dg[0].price, MicroUsd(4800));
        assert!(dg[0].managed);
        let mini = t.model("llm", "openai", "gpt-4o-mini").unwrap();
        assert_eq!(mini.len(), 2);
        assert!(t.model("llm", "openai", "gpt-9").is_none());
    }

    #[test]
    fn bad_rows_are_typed_errors() {
        let e = RateTable::from_csv("h\nstt,x,y,furlongs,1,true,src\n").unwrap_err();
        assert_eq!(e.code(), "bad_rate_row");
        let e = RateTable::from_csv("h\nstt,x,y\n").unwrap_err();
        assert!(e.to_string().contains("line 2"));
        assert!(RateTable::from_csv("h\nstt,x,y,minute,abc,true,s\n").is_err());
        assert!(RateTable::from_csv("h\nstt,x,y,minute,1,yes,s\n").is_err());
    }

    #[test]
    fn a_responses_api_model_is_priced_as_the_model() {
        let t = RateTable::from_csv("service,provider,model,unit,price_usd,managed,source\nllm,openai,gpt-4.1-mini,mega_input_tokens,0.40,true,x\n").unwrap();
        assert!(t.model("llm", "openai", "responses:gpt-4.1-mini").is_some());
        assert!(t.model("tts", "openai", "responses:gpt-4.1-mini").is_none());
    }
}
