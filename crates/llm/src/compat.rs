//! The OpenAI-compatible family (protocols/llm-more.md E2, llm.md D4): providers served by the
//! Chat Completions adapter with their own base URL and request quirks.
//!
//! The decoder reads every usage form (`usage` on any chunk, `x_groq.usage`, growing snapshots)
//! and keeps the largest counts, so [`UsageQuirk`] documents a provider rather than switching
//! code; what does switch per provider is the request: `stream_options`, the token-cap field and
//! how tools are asked for ([`ToolQuirks`]).

/// Where a provider reports streamed token usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageQuirk {
    /// One `usage` chunk before `[DONE]` (asked for with `stream_options.include_usage`).
    UsageChunk,
    /// Groq: usage under `x_groq.usage` on the final chunk (and a usage chunk if asked).
    XGroq,
    /// A growing snapshot on every chunk (xAI, SambaNova): the last one counts.
    Cumulative,
    /// Not documented; a stream without usage is billed by estimate.
    Unverified,
}

/// Which request field caps the completion length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    /// OpenAI's current name.
    MaxCompletionTokens,
    /// The older name every compatible server accepts.
    MaxTokens,
}

/// How a provider takes OpenAI's tool fields (`tools` itself is the same everywhere). A provider
/// whose quirks are not documented gets OpenAI's shape and says UNVERIFIED where it is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolQuirks {
    /// The `tool_choice` word for "call some tool": OpenAI's `"required"`; Mistral and Fireworks
    /// say `"any"`.
    pub required_choice: &'static str,
    /// Whether `parallel_tool_calls` may be sent. Where it may not, the field is left out and the
    /// provider's default (parallel calls allowed) applies even when the caller turned them off.
    pub parallel_tool_calls: bool,
}

/// OpenAI's own tool fields (protocols/llm.md D1).
pub const OPENAI_TOOLS: ToolQuirks = ToolQuirks { required_choice: "required", parallel_tool_calls: true };
/// `"any"` for a required call, `parallel_tool_calls` accepted.
const ANY_TOOLS: ToolQuirks = ToolQuirks { required_choice: "any", ..OPENAI_TOOLS };
/// OpenAI's `tool_choice` words, no `parallel_tool_calls`.
const NO_PARALLEL_FIELD: ToolQuirks = ToolQuirks { parallel_tool_calls: false, ..OPENAI_TOOLS };

/// One OpenAI-compatible provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompatProvider {
    /// As in the rate table's `provider` column and the registry.
    pub name: &'static str,
    /// API base including version; requests go to `{base}/chat/completions`.
    pub default_base_url: &'static str,
    pub usage_quirk: UsageQuirk,
    /// Send `stream_options.include_usage`; Mistral, Fireworks and Cerebras get no
    /// `stream_options` (pipecat omits it for them; Fireworks documents it as unsupported).
    pub include_usage: bool,
    pub max_tokens_field: MaxTokensField,
    /// Key check: `GET {base}/{validate_path}` (E5). Vercel's `models` may be public
    /// (UNVERIFIED), which would make it accept any key.
    pub validate_path: &'static str,
    /// How `tool_choice` and `parallel_tool_calls` are sent.
    pub tools: ToolQuirks,
}

const fn family(
    name: &'static str,
    default_base_url: &'static str,
    usage_quirk: UsageQuirk,
    include_usage: bool,
    max_tokens_field: MaxTokensField,
    validate_path: &'static str,
) -> CompatProvider {
    CompatProvider {
        name,
        default_base_url,
        usage_quirk,
        include_usage,
        max_tokens_field,
        validate_path,
        tools: OPENAI_TOOLS,
    }
}

use MaxTokensField::{MaxCompletionTokens, MaxTokens};
use UsageQuirk::{Cumulative, Unverified, UsageChunk, XGroq};

/// OpenAI itself, the family's reference.
pub const OPENAI: CompatProvider =
    family("openai", "https://api.openai.com/v1", UsageChunk, true, MaxCompletionTokens, "models");
/// Tools as OpenAI (`required`, a named function, `parallel_tool_calls`: papi-ai/groq v0.14.1
/// release notes; CopilotKit's `GroqAdapter` sends `parallel_tool_calls`).
pub const GROQ: CompatProvider =
    family("groq", "https://api.groq.com/openai/v1", XGroq, true, MaxCompletionTokens, "models");
/// `required` and a named function are in Cerebras' tool-use guide; `parallel_tool_calls` is
/// among the fields Cerebras answers with a 400 (its OpenAI-compatibility list, as quoted by
/// req_llm's Cerebras guide).
pub const CEREBRAS: CompatProvider = CompatProvider {
    tools: NO_PARALLEL_FIELD,
    ..family("cerebras", "https://api.cerebras.ai/v1", Unverified, false, MaxCompletionTokens, "models")
};
/// Tools as OpenAI; litellm forwards `parallel_tool_calls` to it (acceptance UNVERIFIED).
pub const DEEPSEEK: CompatProvider =
    family("deepseek", "https://api.deepseek.com/v1", UsageChunk, true, MaxTokens, "models");
/// OpenRouter's `/models` needs no key (UNVERIFIED), so the check uses `/key` (path UNVERIFIED).
/// Tools as OpenAI (UNVERIFIED).
pub const OPENROUTER: CompatProvider =
    family("openrouter", "https://openrouter.ai/api/v1", UsageChunk, true, MaxTokens, "key");
/// xAI answers a bad key with HTTP 400, and `/api-key` also reports a blocked key. Tools as
/// OpenAI (litellm's `XAIChatConfig` passes `tool_choice` and `parallel_tool_calls`).
pub const XAI: CompatProvider = family("xai", "https://api.x.ai/v1", Cumulative, true, MaxTokens, "api-key");
/// A required call is `"any"`, Mistral's own word: its current SDK takes `any` or `required`
/// (mistralai/client-python `ChatCompletionStreamRequest`), older API versions only
/// `auto`/`any`/`none` (litellm maps `required` to `any`). `parallel_tool_calls` is in the
/// same SDK request.
pub const MISTRAL: CompatProvider = CompatProvider {
    tools: ANY_TOOLS,
    ..family("mistral", "https://api.mistral.ai/v1", Unverified, false, MaxTokens, "models")
};
/// Tools as OpenAI (UNVERIFIED).
pub const TOGETHER: CompatProvider =
    family("together", "https://api.together.xyz/v1", UsageChunk, true, MaxTokens, "models");
/// A required call is `"any"` (Fireworks' function-calling guide; litellm maps `required` to
/// `any`, BerriAI/litellm#4416); litellm sends `parallel_tool_calls` to its tool models.
pub const FIREWORKS: CompatProvider = CompatProvider {
    tools: ANY_TOOLS,
    ..family("fireworks", "https://api.fireworks.ai/inference/v1", Unverified, false, MaxTokens, "models")
};
/// pipecat's base; litellm uses `https://api.novita.ai/v3/openai` (both UNVERIFIED as current).
/// Tools as OpenAI (UNVERIFIED).
pub const NOVITA: CompatProvider =
    family("novita", "https://api.novita.ai/openai", UsageChunk, true, MaxTokens, "models");
/// Its documented parameters have `tools` and `tool_choice` but no `parallel_tool_calls`
/// (llm-more.md E2, LL-HYP); `required` UNVERIFIED.
pub const HYPERBOLIC: CompatProvider = CompatProvider {
    tools: NO_PARALLEL_FIELD,
    ..family("hyperbolic", "https://api.hyperbolic.xyz/v1", Unverified, true, MaxTokens, "models")
};
/// Tools as OpenAI (litellm's `SambanovaConfig` passes `tool_choice` and `parallel_tool_calls`).
pub const SAMBANOVA: CompatProvider =
    family("sambanova", "https://api.sambanova.ai/v1", Cumulative, true, MaxTokens, "models");
/// Tools as OpenAI (UNVERIFIED), as for the four below.
pub const NVIDIA: CompatProvider =
    family("nvidia", "https://integrate.api.nvidia.com/v1", UsageChunk, true, MaxTokens, "models");
pub const CHUTES: CompatProvider = family("chutes", "https://llm.chutes.ai/v1", Unverified, true, MaxTokens, "models");
pub const AKASH: CompatProvider = family("akash", "https://api.akashml.com/v1", Unverified, true, MaxTokens, "models");
pub const MORPHEUS: CompatProvider =
    family("morpheus", "https://api.mor.org/api/v1", Unverified, true, MaxTokens, "models");
pub const VERCEL: CompatProvider =
    family("vercel", "https://ai-gateway.vercel.sh/v1", Unverified, true, MaxTokens, "models");

/// Every family member (OpenAI itself excluded).
pub const FAMILY: [&CompatProvider; 16] = [
    &GROQ,
    &CEREBRAS,
    &DEEPSEEK,
    &OPENROUTER,
    &XAI,
    &MISTRAL,
    &TOGETHER,
    &FIREWORKS,
    &NOVITA,
    &HYPERBOLIC,
    &SAMBANOVA,
    &NVIDIA,
    &CHUTES,
    &AKASH,
    &MORPHEUS,
    &VERCEL,
];

/// The Chat Completions provider called `name` (OpenAI or a family member).
pub fn find(name: &str) -> Option<&'static CompatProvider> {
    std::iter::once(&OPENAI).chain(FAMILY).find(|p| p.name == name)
}

/// The public API base for a provider name, for configuration defaults: what each adapter
/// joins its paths to (`…/v1` for the Chat Completions family, bare hosts for Anthropic and
/// Google, whose adapters add their own version segment).
pub fn default_base_url(provider: &str) -> Option<&'static str> {
    match provider {
        "anthropic" => Some("https://api.anthropic.com"),
        "google" => Some("https://generativelanguage.googleapis.com"),
        "azure" => Some(crate::azure::DEFAULT_BASE_URL),
        "bedrock" => Some(crate::bedrock::DEFAULT_BASE_URL),
        _ => find(provider).map(|p| p.default_base_url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_bases_parse() {
        let mut names: Vec<_> = FAMILY.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILY.len());
        for p in std::iter::once(&OPENAI).chain(FAMILY) {
            let url = url::Url::parse(p.default_base_url).unwrap();
            assert_eq!(url.scheme(), "https", "{}", p.name);
            assert_eq!(find(p.name), Some(p));
            assert_eq!(default_base_url(p.name), Some(p.default_base_url));
            assert!(!p.validate_path.is_empty() && !p.validate_path.starts_with('/'));
        }
    }

    #[test]
    fn every_family_name_is_in_the_rate_table_vocabulary() {
        // The rate seed's `llm` providers served by Chat Completions (azure and bedrock are not).
        let seed = [
            "akash",
            "cerebras",
            "chutes",
            "deepseek",
            "fireworks",
            "groq",
            "hyperbolic",
            "mistral",
            "morpheus",
            "novita",
            "nvidia",
            "openrouter",
            "sambanova",
            "together",
            "vercel",
            "xai",
        ];
        let mut names: Vec<_> = FAMILY.iter().map(|p| p.name).collect();
        names.sort_unstable();
        assert_eq!(names, seed);
    }

    #[test]
    fn default_bases() {
        assert_eq!(default_base_url("openai"), Some("https://api.openai.com/v1"));
        assert_eq!(default_base_url("groq"), Some("https://api.groq.com/openai/v1"));
        assert_eq!(default_base_url("anthropic"), Some("https://api.anthropic.com"));
        assert_eq!(default_base_url("google"), Some("https://generativelanguage.googleapis.com"));
        assert_eq!(default_base_url("nope"), None);
        assert_eq!(find("anthropic"), None);
    }
}
