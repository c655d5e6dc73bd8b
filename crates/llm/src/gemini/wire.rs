//! Gemini `generateContent` JSON shapes (protocols/llm.md D3), camelCase on the wire. Unknown
//! fields are ignored; everything optional is optional.

use crate::{LlmError, Message, Role};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateRequest<'a> {
    pub contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Serialize)]
pub(super) struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub parts: Vec<TextPart<'a>>,
}

#[derive(Debug, Serialize)]
pub(super) struct TextPart<'a> {
    pub text: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerationConfig {
    pub max_output_tokens: u32,
}

impl<'a> GenerateRequest<'a> {
    /// System messages become `systemInstruction`; user/assistant turns become `user`/`model`
    /// contents, consecutive same-role turns sharing one content (Gemini wants alternation),
    /// empty ones left out (an empty part is rejected).
    pub(super) fn new(messages: &'a [Message], max_tokens: Option<u32>) -> Self {
        let mut system: Vec<TextPart<'a>> = Vec::new();
        let mut contents: Vec<Content<'a>> = Vec::with_capacity(messages.len());
        for m in messages.iter().filter(|m| !m.content.trim().is_empty()) {
            let part = TextPart { text: &m.content };
            let role = match m.role {
                Role::System => {
                    system.push(part);
                    continue;
                }
                Role::User => "user",
                Role::Assistant => "model",
            };
            match contents.last_mut() {
                Some(last) if last.role == Some(role) => last.parts.push(part),
                _ => contents.push(Content { role: Some(role), parts: vec![part] }),
            }
        }
        Self {
            contents,
            system_instruction: (!system.is_empty()).then_some(Content { role: None, parts: system }),
            generation_config: max_tokens.map(|n| GenerationConfig { max_output_tokens: n }),
        }
    }
}

/// One streamed `GenerateContentResponse`, or a mid-stream `{"error":{…}}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Chunk {
    #[serde(default)]
    pub candidates: Option<Vec<Candidate>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    #[serde(default)]
    pub content: Option<CandidateContent>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CandidateContent {
    #[serde(default)]
    pub parts: Option<Vec<Part>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Part {
    #[serde(default)]
    pub text: Option<String>,
    /// Thought summaries are not to be spoken.
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default)]
    pub function_call: Option<FunctionCall>,
}

/// Arrives whole, not in fragments.
#[derive(Debug, Deserialize)]
pub(super) struct FunctionCall {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub args: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: Option<u64>,
    #[serde(default)]
    pub candidates_token_count: Option<u64>,
    /// Billed as output on thinking models.
    #[serde(default)]
    pub thoughts_token_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorEnvelope {
    #[serde(default)]
    pub error: ApiError,
}

/// `{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED","details":[…]}`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ApiError {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

impl ApiError {
    /// Maps by `status` (falling back to the HTTP status `http`); an invalid key is
    /// `Unauthorized` although Google answers it with 400 `INVALID_ARGUMENT`.
    pub(super) fn to_llm_error(&self, http: u16, retry_after_ms: Option<u64>) -> LlmError {
        if self.is_bad_key() {
            return LlmError::Unauthorized;
        }
        let status = match self.status.as_deref() {
            Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => 400,
            Some("UNAUTHENTICATED") => 401,
            Some("PERMISSION_DENIED") => 403,
            Some("NOT_FOUND") => 404,
            Some("RESOURCE_EXHAUSTED") => 429,
            Some("INTERNAL") => 500,
            Some("UNAVAILABLE") => 503,
            Some("DEADLINE_EXCEEDED") => 504,
            _ => self.code.filter(|_| http < 400).unwrap_or(http),
        };
        let retry = retry_after_ms.or_else(|| self.retry_delay_ms());
        LlmError::from_status(status, retry, self.message.as_deref())
    }

    fn is_bad_key(&self) -> bool {
        let reason = self.details.iter().any(|d| d.get("reason").and_then(|r| r.as_str()) == Some("API_KEY_INVALID"));
        reason || self.message.as_deref().is_some_and(|m| m.starts_with("API key not valid"))
    }

    /// `RetryInfo.retryDelay` (`"13s"`, `"1.5s"`) from `details`.
    fn retry_delay_ms(&self) -> Option<u64> {
        self.details.iter().find_map(|d| {
            let secs: f64 = d.get("retryDelay")?.as_str()?.strip_suffix('s')?.parse().ok()?;
            (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).ceil() as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: Role, content: &str) -> Message {
        Message { role, content: content.into() }
    }

    #[test]
    fn request_shape() {
        let messages = [
            m(Role::System, "Be brief."),
            m(Role::Assistant, "Hi!"),
            m(Role::User, "hello"),
            m(Role::User, ""),
            m(Role::User, "still there?"),
        ];
        let v = serde_json::to_value(GenerateRequest::new(&messages, Some(200))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "contents": [
                    {"role": "model", "parts": [{"text": "Hi!"}]},
                    {"role": "user", "parts": [{"text": "hello"}, {"text": "still there?"}]}
                ],
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "generationConfig": {"maxOutputTokens": 200}
            })
        );
        let v = serde_json::to_value(GenerateRequest::new(&messages[2..3], None)).unwrap();
        assert_eq!(v, serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}));
    }
}
