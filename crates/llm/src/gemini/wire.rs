//! Gemini `generateContent` JSON shapes (protocols/llm.md D3), camelCase on the wire. Unknown
//! fields are ignored; everything optional is optional.

use crate::{LlmError, Message, Role, ToolCall, ToolChoice, ToolSpec, Tools};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// Ids this adapter makes up for calls Gemini sent without one (older models give none): they
/// are never sent back, results are matched by function name.
pub(super) const SYNTHETIC_ID_PREFIX: &str = "gemini_call_";
/// The thought signature Google documents for replayed function calls whose real signature was
/// not kept (ai.google.dev/gemini-api/docs/thought-signatures; Gemini 3 refuses a replayed call
/// without one). Sent on the first `functionCall` part of each model turn. UNVERIFIED that
/// every non-thinking model ignores it.
pub(super) const REPLAYED_SIGNATURE: &str = "skip_thought_signature_validator";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateRequest<'a> {
    pub contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolGroup<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
}

#[derive(Debug, Serialize)]
pub(super) struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub parts: Vec<OutPart<'a>>,
}

/// A request part: text, a replayed `functionCall {name, args, id?}` (with its
/// `thoughtSignature` beside it, on the part) or a `functionResponse {name, response, id?}`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutPart<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<OutCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_response: Option<OutResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub(super) struct OutCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub name: &'a str,
    pub args: Value,
}

/// `response` must be a JSON object: "Use "output" key to specify function output and "error"
/// key to specify error details" (google-genai `FunctionResponse.response`), so a result that
/// is not an object goes as `{"output": …}`.
#[derive(Debug, Serialize)]
pub(super) struct OutResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub name: &'a str,
    pub response: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerationConfig {
    pub max_output_tokens: u32,
}

/// `{"functionDeclarations": [{name, description?, parameters}]}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolGroup<'a> {
    pub function_declarations: Vec<Declaration<'a>>,
}

#[derive(Debug, Serialize)]
pub(super) struct Declaration<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    pub parameters: &'a Value,
}

/// `toolConfig.functionCallingConfig {mode: AUTO|ANY|NONE, allowedFunctionNames}` (names only
/// with `ANY`; google-genai `FunctionCallingConfig`). Gemini has no switch for parallel calls.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ToolConfig<'a> {
    pub function_calling_config: CallingConfig<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CallingConfig<'a> {
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_function_names: Vec<&'a str>,
}

impl<'a> ToolConfig<'a> {
    fn of(choice: &'a ToolChoice) -> Self {
        let (mode, allowed_function_names) = match choice {
            ToolChoice::Auto => ("AUTO", Vec::new()),
            ToolChoice::None => ("NONE", Vec::new()),
            ToolChoice::Required => ("ANY", Vec::new()),
            ToolChoice::Function(name) => ("ANY", vec![name.as_str()]),
        };
        Self { function_calling_config: CallingConfig { mode, allowed_function_names } }
    }
}

impl<'a> GenerateRequest<'a> {
    /// System messages become `systemInstruction`; user/assistant turns become `user`/`model`
    /// contents, consecutive same-role turns sharing one content (Gemini wants alternation),
    /// empty ones left out (an empty part is rejected). Calls are `functionCall` parts of the
    /// model's content, results `functionResponse` parts of a user content, named after the
    /// call they answer (a result answering no call of the conversation is refused here).
    /// Without tools offered, calls and results go as text.
    pub(super) fn new(messages: &'a [Message], max_tokens: Option<u32>, tools: Tools<'a>) -> Result<Self, LlmError> {
        let mut system: Vec<OutPart<'a>> = Vec::new();
        let mut contents: Vec<Content<'a>> = Vec::with_capacity(messages.len());
        for m in messages {
            let role = match m.role {
                Role::System if !m.content.trim().is_empty() => {
                    system.push(OutPart { text: Some(Cow::Borrowed(&m.content)), ..OutPart::default() });
                    continue;
                }
                Role::System => continue,
                Role::User | Role::Tool => "user",
                Role::Assistant => "model",
            };
            let parts = parts(m, messages, !tools.is_empty())?;
            if parts.is_empty() {
                continue;
            }
            match contents.last_mut() {
                Some(last) if last.role == Some(role) => last.parts.extend(parts),
                _ => contents.push(Content { role: Some(role), parts }),
            }
        }
        sign_replayed_calls(&mut contents);
        let offered = !tools.is_empty();
        Ok(Self {
            contents,
            system_instruction: (!system.is_empty()).then_some(Content { role: None, parts: system }),
            generation_config: max_tokens.map(|n| GenerationConfig { max_output_tokens: n }),
            tools: offered.then(|| ToolGroup::of(tools.specs)).into_iter().collect(),
            tool_config: tools.choice.filter(|_| offered).map(ToolConfig::of),
        })
    }
}

/// A model content whose calls came without the signature Gemini gave them (another provider
/// wrote them: failover, or a client's history) gets [`REPLAYED_SIGNATURE`] on its first
/// `functionCall` part, where Gemini 3 requires one for parallel calls.
fn sign_replayed_calls(contents: &mut [Content<'_>]) {
    for content in contents.iter_mut().filter(|c| c.role == Some("model")) {
        if content.parts.iter().any(|p| p.thought_signature.is_some()) {
            continue;
        }
        if let Some(first) = content.parts.iter_mut().find(|p| p.function_call.is_some()) {
            first.thought_signature = Some(REPLAYED_SIGNATURE);
        }
    }
}

impl<'a> ToolGroup<'a> {
    fn of(specs: &'a [ToolSpec]) -> Self {
        let declare =
            |t: &'a ToolSpec| Declaration { name: &t.name, description: &t.description, parameters: &t.parameters };
        Self { function_declarations: specs.iter().map(declare).collect() }
    }
}

fn text_part(text: Cow<'_, str>) -> Option<OutPart<'_>> {
    (!text.trim().is_empty()).then(|| OutPart { text: Some(text), ..OutPart::default() })
}

/// The parts one message contributes: text (unless blank), then calls; a result's
/// `functionResponse`. With `tools` off, everything as text.
fn parts<'a>(m: &'a Message, conversation: &'a [Message], tools: bool) -> Result<Vec<OutPart<'a>>, LlmError> {
    if !tools {
        return Ok(text_part(m.text_with_tools(conversation)).into_iter().collect());
    }
    if m.role == Role::Tool {
        let Some(call) = m.answered_call(conversation) else {
            let id = m.tool_call_id.as_deref().unwrap_or_default();
            return Err(LlmError::BadRequest(format!("tool result for unknown call id '{id}'")));
        };
        let response = OutResponse { id: sent_id(call), name: &call.name, response: response_object(&m.content) };
        return Ok(vec![OutPart { function_response: Some(response), ..OutPart::default() }]);
    }
    let calls = m.tool_calls.iter().map(|c| OutPart {
        function_call: Some(OutCall { id: sent_id(c), name: &c.name, args: c.arguments_object() }),
        thought_signature: c.signature.as_deref(),
        ..OutPart::default()
    });
    Ok(text_part(Cow::Borrowed(&m.content)).into_iter().chain(calls).collect())
}

/// The call's id as Gemini gave it, or none if this adapter made it up.
fn sent_id(call: &ToolCall) -> Option<&str> {
    Some(call.id.as_str()).filter(|id| !id.starts_with(SYNTHETIC_ID_PREFIX) && !id.is_empty())
}

/// A JSON object result as it is; anything else under `output` (JSON text parsed, other text
/// as a string).
fn response_object(content: &str) -> Value {
    match serde_json::from_str::<Value>(content) {
        Ok(v @ Value::Object(_)) => v,
        Ok(v) => serde_json::json!({ "output": v }),
        Err(_) => serde_json::json!({ "output": content }),
    }
}

/// One streamed `GenerateContentResponse`, or a mid-stream `{"error":{…}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Chunk {
    pub candidates: Option<Vec<Candidate>>,
    /// Names the calls of a response that come without an id.
    pub response_id: Option<String>,
    pub usage_metadata: Option<UsageMetadata>,
    pub prompt_feedback: Option<PromptFeedback>,
    pub error: Option<ApiError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Candidate {
    pub content: Option<CandidateContent>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CandidateContent {
    pub parts: Option<Vec<Part>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Part {
    pub text: Option<String>,
    /// Thought summaries are not to be spoken.
    pub thought: Option<bool>,
    pub function_call: Option<FunctionCall>,
    /// The signature of the model's reasoning: on a `functionCall` part, or on a part of its
    /// own just before one.
    pub thought_signature: Option<String>,
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
#[serde(default, rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    pub prompt_token_count: Option<u64>,
    pub candidates_token_count: Option<u64>,
    /// Billed as output on thinking models.
    pub thoughts_token_count: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    pub block_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorEnvelope {
    pub error: ApiError,
}

/// `{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED","details":[…]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ApiError {
    pub code: Option<u16>,
    pub message: Option<String>,
    pub status: Option<String>,
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
    use serde_json::json;

    fn order_status() -> ToolSpec {
        ToolSpec {
            name: "order_status".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}}),
        }
    }

    fn tool_history(result_for: &str) -> Vec<Message> {
        let call = |id: &str, args: &str| ToolCall::new(id, "order_status", args);
        vec![
            Message::user("order status 4217 and 99"),
            Message::assistant_calls(
                "",
                vec![call("gemini_call_r1_1", r#"{"order_id":"4217"}"#), call("fc-7", r#"{"order_id":"99"}"#)],
            ),
            Message::tool_result(result_for, r#"{"status":"shipped"}"#),
            Message::tool_result("fc-7", "lost"),
        ]
    }

    #[test]
    fn calls_and_results_as_parts() {
        let specs = [order_status()];
        let forced = ToolChoice::Function("order_status".into());
        let history = tool_history("gemini_call_r1_1");
        let tools = Tools { specs: &specs, choice: Some(&forced), parallel: Some(false) };
        let v = serde_json::to_value(GenerateRequest::new(&history, None, tools).unwrap()).unwrap();
        assert_eq!(
            v["tools"],
            json!([{"functionDeclarations": [{"name": "order_status", "parameters": specs[0].parameters}]}])
        );
        assert_eq!(
            v["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["order_status"]}})
        );
        assert_eq!(
            v["contents"],
            json!([
                {"role": "user", "parts": [{"text": "order status 4217 and 99"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "order_status", "args": {"order_id": "4217"}}, "thoughtSignature": REPLAYED_SIGNATURE},
                    {"functionCall": {"id": "fc-7", "name": "order_status", "args": {"order_id": "99"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "order_status", "response": {"status": "shipped"}}},
                    {"functionResponse": {"id": "fc-7", "name": "order_status", "response": {"output": "lost"}}}
                ]}
            ])
        );
        let modes: Vec<Value> = [ToolChoice::Auto, ToolChoice::None, ToolChoice::Required]
            .iter()
            .map(|c| {
                let hi = [Message::user("hi")];
                let tools = Tools { specs: &specs, choice: Some(c), parallel: None };
                serde_json::to_value(GenerateRequest::new(&hi, None, tools).unwrap()).unwrap()["toolConfig"].clone()
            })
            .collect();
        assert_eq!(
            modes,
            [
                json!({"functionCallingConfig": {"mode": "AUTO"}}),
                json!({"functionCallingConfig": {"mode": "NONE"}}),
                json!({"functionCallingConfig": {"mode": "ANY"}})
            ]
        );
    }

    #[test]
    fn a_result_for_an_unknown_call_is_refused_and_no_tools_means_text() {
        let specs = [order_status()];
        let history = tool_history("nope");
        let tools = Tools { specs: &specs, choice: None, parallel: None };
        let err = GenerateRequest::new(&history, None, tools).unwrap_err();
        assert_eq!(err, LlmError::BadRequest("tool result for unknown call id 'nope'".into()));
        let history = tool_history("gemini_call_r1_1");
        let v = serde_json::to_value(GenerateRequest::new(&history, None, Tools::default()).unwrap()).unwrap();
        assert!(v.get("tools").is_none() && v.get("toolConfig").is_none(), "{v}");
        assert_eq!(
            v["contents"][1]["parts"][0]["text"],
            "(called order_status with {\"order_id\":\"4217\"})\n(called order_status with {\"order_id\":\"99\"})"
        );
        assert_eq!(v["contents"][2]["parts"][1]["text"], "(result of order_status: lost)");
    }

    fn m(role: Role, content: &str) -> Message {
        Message::new(role, content)
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
        let v = serde_json::to_value(GenerateRequest::new(&messages, Some(200), Tools::default()).unwrap()).unwrap();
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
        let v = serde_json::to_value(GenerateRequest::new(&messages[2..3], None, Tools::default()).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}));
    }
}
