//! The APIs the simulator speaks, the routes of each, and which stands in for which provider.
//! A new API = its module, a variant of [`Api`] and its lines in the matches below.

use crate::routes::Routes;
use crate::{LlmSim, SimConfig};
use simkit::{RunningSim, SimKeys, StartFuture, Tuning};

/// A provider API one simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Chat Completions and Responses, `GET /v1/models` and the family's key checks: OpenAI
    /// and every OpenAI-compatible provider.
    OpenAi,
    /// Messages (`POST /v1/messages`).
    Anthropic,
    /// Google AI Studio (`…:streamGenerateContent`).
    Gemini,
    /// Azure OpenAI, classic and v1 endpoints.
    Azure,
    /// Bedrock ConverseStream with SigV4.
    Bedrock,
}

/// Every simulator `switchboard sim` and sandbox mode start, one per API.
pub const SIMS: &[Api] = &[Api::OpenAi, Api::Anthropic, Api::Gemini, Api::Azure, Api::Bedrock];

impl Api {
    /// The provider name it is registered under (the `llm` registry's, the keys' `provider=`).
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "google",
            Self::Azure => "azure",
            Self::Bedrock => "bedrock",
        }
    }

    /// The path of the base URL, as in the provider's documented base.
    pub(crate) fn base_path(self) -> &'static str {
        match self {
            Self::OpenAi => "/v1",
            _ => "",
        }
    }

    /// The routes it serves.
    pub(crate) fn routes(self) -> &'static Routes {
        match self {
            Self::OpenAi => &crate::openai::ROUTES,
            Self::Anthropic => &crate::anthropic::ROUTES,
            Self::Gemini => &crate::gemini::ROUTES,
            Self::Azure => &crate::azure::ROUTES,
            Self::Bedrock => &crate::bedrock::ROUTES,
        }
    }
}

/// The API that serves LLM provider `provider` (a name of `llm::registry`): its own, or the
/// OpenAI one for the OpenAI-compatible family.
pub fn api_for(provider: &str) -> Option<Api> {
    match provider {
        "anthropic" => Some(Api::Anthropic),
        "google" => Some(Api::Gemini),
        "azure" => Some(Api::Azure),
        "bedrock" => Some(Api::Bedrock),
        name => llm::compat::find(name).map(|_| Api::OpenAi),
    }
}

/// Starts `api`'s simulator with the keys it accepts and `switchboard sim`'s tuning.
pub fn start(api: Api, keys: SimKeys, t: Tuning) -> StartFuture {
    Box::pin(async move {
        let sim = LlmSim::start(api, SimConfig::from_tuning(keys, &t)).await?;
        Ok(Box::new(sim) as Box<dyn RunningSim>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sim_serves_its_own_provider() {
        for api in SIMS {
            assert_eq!(api_for(api.name()), Some(*api));
        }
        assert_eq!(api_for("groq"), Some(Api::OpenAi));
        assert_eq!(api_for("nope"), None);
    }
}
