//! `POST /api/v1/chat/completions`: the OpenAI-compatible endpoint, so any OpenAI SDK pointed at
//! Switchboard (`base_url=…/api/v1`) reaches every LLM provider with the org's own key (BYOK) or
//! the platform's, resolved by the same rules as a call and billed by the same meter.
//!
//! - Auth: the org's API key as the bearer token (what the SDKs send as `api_key`).
//! - Routing: the model name picks the provider from the rate table; `x-byok-provider` forces one
//!   (for a model name several providers share).
//! - Metering: provider-reported tokens when the stream carries them, else the conservative
//!   estimate marked `estimated`; a client that hangs up mid-stream is billed for what was
//!   generated. Each request is a session of gateway `api` whose id is the completion id.
//! - Tools: `tools`, `tool_choice` and `parallel_tool_calls` go to the provider in its own tool
//!   protocol (Anthropic `tool_use`, Gemini `functionCall`, Bedrock `toolUse`, …); its calls come
//!   back in OpenAI's shape (`tool_calls`, streamed as deltas, `finish_reason: "tool_calls"`), and
//!   `assistant` messages with `tool_calls` and `tool` messages go back to it the same way.
//! - Not forwarded: `n > 1` and non-text content parts, refused with a 400 rather than silently
//!   dropped.

use crate::api::AppState;
use crate::api_org::org_auth;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing::store::SessionRow;
use billing::{BillingError, ServiceChoice};
use llm::{LlmEvent, LlmRequest, Message, Role, ToolCall, ToolChoice, ToolSpec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use session::RequestMeter;
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use utoipa::ToSchema;

/// The rate table's service name of every row this endpoint serves.
const LLM: &str = billing::Service::Llm.as_str();

/// An error in OpenAI's shape (`{"error": {"message", "type", "code", "param"}}`), which the SDKs
/// turn into their typed exceptions.
pub struct OpenAiError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
}

impl OpenAiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, code, message: message.into() }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind, "code": self.code, "param": null}});
        (self.status, Json(body)).into_response()
    }
}

impl From<BillingError> for OpenAiError {
    fn from(e: BillingError) -> Self {
        let status = match &e {
            BillingError::UnknownModel { .. } | BillingError::UnknownProvider(_) => StatusCode::NOT_FOUND,
            BillingError::PlanRestricted { .. } | BillingError::ByokKeyRequired(_) => StatusCode::FORBIDDEN,
            BillingError::InsufficientFunds => StatusCode::PAYMENT_REQUIRED,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let kind = if status == StatusCode::SERVICE_UNAVAILABLE { "api_error" } else { "invalid_request_error" };
        Self::new(status, kind, e.code(), e.to_string())
    }
}

/// A chat completion request, as OpenAI's SDKs send it.
#[derive(Deserialize, ToSchema)]
pub struct ChatBody {
    /// Picks the provider from the rate table (unless `x-byok-provider` names one).
    #[schema(required)]
    model: Option<String>,
    #[serde(default)]
    #[schema(required)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    /// Only 1 (more is refused).
    n: Option<u32>,
    /// Functions the model may call (`{"type":"function","function":{name, description,
    /// parameters}}`), passed to any provider that has tools.
    tools: Option<Vec<ChatTool>>,
    /// `auto`, `none`, `required`, or `{"type":"function","function":{"name"}}`.
    #[schema(value_type = Option<Object>)]
    tool_choice: Option<Value>,
    /// Where the provider has the switch (OpenAI's family, Anthropic).
    parallel_tool_calls: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
struct ChatTool {
    /// `function`.
    #[serde(rename = "type")]
    kind: String,
    function: FunctionDecl,
}

#[derive(Deserialize, ToSchema)]
struct FunctionDecl {
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// JSON Schema of the arguments.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    parameters: Option<Value>,
}

/// A tool call, as OpenAI writes it in an assistant message (and as this endpoint answers).
#[derive(Deserialize, Serialize, ToSchema)]
struct ChatToolCall {
    id: String,
    /// `function`.
    #[serde(rename = "type", default = "function_kind")]
    kind: String,
    function: FunctionCall,
}

#[derive(Deserialize, Serialize, ToSchema)]
struct FunctionCall {
    name: String,
    /// The arguments as JSON text.
    #[serde(default)]
    arguments: String,
}

fn function_kind() -> String {
    "function".into()
}

impl From<ToolCall> for ChatToolCall {
    fn from(c: ToolCall) -> Self {
        Self { id: c.id, kind: function_kind(), function: FunctionCall { name: c.name, arguments: c.arguments } }
    }
}

#[derive(Deserialize, ToSchema)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize, ToSchema)]
struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    role: String,
    /// A string, or an array of text parts.
    #[serde(default)]
    #[schema(value_type = Object)]
    content: Value,
    /// An assistant message's calls.
    #[serde(default)]
    tool_calls: Option<Vec<ChatToolCall>>,
    /// A `tool` message: the call it answers.
    #[serde(default)]
    tool_call_id: Option<String>,
}

/// The answer of a request without `stream`.
#[derive(Serialize, ToSchema)]
pub struct ChatCompletion {
    /// Also the id of the session that billed it.
    id: String,
    /// `chat.completion`.
    object: &'static str,
    created: u64,
    model: String,
    choices: Vec<Choice>,
    usage: TokenUsage,
}

#[derive(Serialize, ToSchema)]
struct Choice {
    index: u32,
    message: AssistantMessage,
    #[schema(value_type = Option<Object>)]
    logprobs: Option<Value>,
    finish_reason: String,
}

#[derive(Serialize, ToSchema)]
struct AssistantMessage {
    role: &'static str,
    /// `null` when the answer is only tool calls.
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ChatToolCall>>,
}

#[derive(Serialize, ToSchema)]
struct TokenUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

/// `GET /api/v1/models`, in OpenAI's list shape.
#[derive(Serialize, ToSchema)]
pub struct ModelList {
    /// `list`.
    object: &'static str,
    data: Vec<ModelEntry>,
}

#[derive(Serialize, ToSchema)]
struct ModelEntry {
    id: String,
    /// `model`.
    object: &'static str,
    created: u64,
    /// The provider.
    owned_by: String,
}

/// What was asked, validated.
struct Ask {
    model: String,
    messages: Vec<Message>,
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u32>,
    tools: Vec<ToolSpec>,
    tool_choice: Option<ToolChoice>,
    parallel_tool_calls: Option<bool>,
}

fn validate(body: ChatBody) -> Result<Ask, OpenAiError> {
    let model = body
        .model
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| OpenAiError::bad_request("missing_model", "you must provide a model parameter"))?;
    if body.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::bad_request("unsupported_parameter", "n must be 1"));
    }
    let tools = tools_of(body.tools.unwrap_or_default())?;
    let tool_choice = body.tool_choice.as_ref().map(|c| tool_choice_of(c, &tools)).transpose()?;
    if body.messages.is_empty() {
        return Err(OpenAiError::bad_request("missing_messages", "messages must be a non-empty array"));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    for (i, m) in body.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => {
                let id = m.tool_call_id.filter(|id| !id.is_empty()).ok_or_else(|| {
                    OpenAiError::bad_request("missing_tool_call_id", format!("messages[{i}] (tool) needs tool_call_id"))
                })?;
                messages.push(Message::tool_result(id, text_of(&m.content, i)?));
                continue;
            }
            other => {
                return Err(OpenAiError::bad_request(
                    "unsupported_role",
                    format!("messages[{i}].role {other:?} is not supported (system, developer, user, assistant, tool)"),
                ))
            }
        };
        let mut message = Message::new(role, text_of(&m.content, i)?);
        if role == Role::Assistant {
            let calls = m.tool_calls.unwrap_or_default().into_iter();
            message.tool_calls = calls.map(|c| ToolCall::new(c.id, c.function.name, c.function.arguments)).collect();
        }
        messages.push(message);
    }
    Ok(Ask {
        model,
        messages,
        stream: body.stream,
        include_usage: body.stream_options.is_some_and(|o| o.include_usage),
        max_tokens: body.max_completion_tokens.or(body.max_tokens),
        tools,
        tool_choice,
        parallel_tool_calls: body.parallel_tool_calls,
    })
}

fn tools_of(tools: Vec<ChatTool>) -> Result<Vec<ToolSpec>, OpenAiError> {
    let mut specs: Vec<ToolSpec> = Vec::with_capacity(tools.len());
    for (i, t) in tools.into_iter().enumerate() {
        let f = t.function;
        if t.kind != "function" {
            return Err(OpenAiError::bad_request("unsupported_tool", format!("tools[{i}].type must be \"function\"")));
        }
        let name_ok = (1..=64).contains(&f.name.len())
            && f.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok || specs.iter().any(|s| s.name == f.name) {
            return Err(OpenAiError::bad_request(
                "invalid_tool_name",
                format!("tools[{i}].function.name must be unique, 1-64 of a-z, A-Z, 0-9, _ and -"),
            ));
        }
        let parameters = f.parameters.unwrap_or_else(llm::empty_object_schema);
        specs.push(ToolSpec { name: f.name, description: f.description.unwrap_or_default(), parameters });
    }
    Ok(specs)
}

fn tool_choice_of(v: &Value, tools: &[ToolSpec]) -> Result<ToolChoice, OpenAiError> {
    let bad = |m: &str| OpenAiError::bad_request("invalid_tool_choice", m.to_string());
    if tools.is_empty() {
        return Err(bad("tool_choice is only allowed when tools are given"));
    }
    match v {
        Value::String(s) if s == "auto" => Ok(ToolChoice::Auto),
        Value::String(s) if s == "none" => Ok(ToolChoice::None),
        Value::String(s) if s == "required" => Ok(ToolChoice::Required),
        _ => {
            let name = v.pointer("/function/name").and_then(Value::as_str).ok_or_else(|| {
                bad("tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":…}}")
            })?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(bad("tool_choice names a function that is not in tools"));
            }
            Ok(ToolChoice::Function(name.to_string()))
        }
    }
}

/// A message's text: a string, or an array of `{"type": "text", "text": …}` parts.
fn text_of(content: &Value, i: usize) -> Result<String, OpenAiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    _ => {
                        return Err(OpenAiError::bad_request(
                            "unsupported_content",
                            format!("messages[{i}].content: only text parts are supported"),
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => {
            Err(OpenAiError::bad_request("invalid_content", format!("messages[{i}].content must be a string or parts")))
        }
    }
}

/// The provider for a model name: the one provider the rate table prices it for; when several
/// do, the one the org has its own key for (BYOK on), else the one the platform serves.
fn route(rates: &billing::RateTable, ctx: &billing::org::OrgContext, model: &str) -> Result<String, OpenAiError> {
    let mut candidates: Vec<&str> =
        rates.iter().filter(|r| r.service == LLM && r.model == model).map(|r| r.provider.as_str()).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let pick = |c: Vec<&str>| match c.as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    };
    if candidates.is_empty() {
        return Err(OpenAiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("the model {model:?} is not in the rate table"),
        ));
    }
    let is_managed =
        |p: &str| rates.iter().any(|r| r.service == LLM && r.provider == p && r.model == model && r.managed);
    let own: Vec<&str> =
        candidates.iter().copied().filter(|p| ctx.byok_credential(LLM, p, is_managed(p)).is_some()).collect();
    let managed: Vec<&str> = candidates.iter().copied().filter(|p| is_managed(p)).collect();
    pick(candidates.clone()).or_else(|| pick(own)).or_else(|| pick(managed)).ok_or_else(|| {
        OpenAiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!(
                "several providers serve {model:?} ({}); choose one with the x-byok-provider header",
                candidates.join(", ")
            ),
        )
    })
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The caller's org (by its API key) and what decides how it is served, with the rate table
/// fresh: the start of every OpenAI-compatible request.
async fn org_context(s: &AppState, headers: &HeaderMap) -> Result<billing::org::OrgContext, OpenAiError> {
    let org = org_auth(s, headers).await.map_err(|_| {
        OpenAiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "missing or unknown API key",
        )
    })?;
    s.deps.refresh_rates().await;
    billing::store::load_context(s.deps.store.as_ref(), &org.id, None).await.map_err(|e| {
        tracing::error!(error = %e, "org context failed");
        OpenAiError::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", "org_unavailable", "the org could not be loaded")
    })
}

/// The LLM models the org can use now (OpenAI list shape; owned_by = provider)
///
/// Priced, on its plan, with a platform key or one of its own.
#[utoipa::path(get, path = "/api/v1/models", operation_id = "listModels", tag = "openai",
    security(("orgKey" = [])), responses((status = 200, body = ModelList)))]
pub async fn models(State(s): State<AppState>, headers: HeaderMap) -> Result<Json<ModelList>, OpenAiError> {
    let ctx = org_context(&s, &headers).await?;
    let rates = s.deps.resolver.rates();
    let mut seen = std::collections::BTreeSet::new();
    let data = rates
        .iter()
        .filter(|r| r.service == LLM && seen.insert((r.provider.clone(), r.model.clone())))
        .filter(|r| billing::org::access(&rates, s.deps.resolver.keys(), &ctx, LLM, &r.provider, &r.model).allowed)
        .map(|r| ModelEntry { id: r.model.clone(), object: "model", created: 0, owned_by: r.provider.clone() })
        .collect();
    Ok(Json(ModelList { object: "list", data }))
}

/// OpenAI-compatible chat completions, routed to any LLM provider
///
/// Streaming and not, with the org's key (BYOK) or the platform's. Authenticated by the org's
/// API key as the bearer token, so the official OpenAI SDKs work with
/// `base_url=<server>/api/v1`. Provider and key are resolved like a call's LLM; usage is
/// billed with the plan's BYOK markup (provider-reported tokens, else an estimate marked
/// `estimated`). Each request is a session of gateway `api` whose id is the completion id.
/// Headers `x-switchboard-provider` and `x-switchboard-billed-to` say who served and who pays.
/// Errors are in OpenAI's shape (`error.message`, `error.type`, `error.code`).
#[utoipa::path(post, path = "/api/v1/chat/completions", operation_id = "createChatCompletion", tag = "openai",
    security(("orgKey" = [])),
    params(("x-byok-provider" = Option<String>, Header, description = "Force the provider (e.g. openrouter) instead of routing by model name")),
    request_body = ChatBody,
    responses((status = 200, description = "A chat.completion, or with `stream` server-sent chat.completion.chunk events ending with `data: [DONE]`",
        content((ChatCompletion = "application/json"), (String = "text/event-stream")))))]
pub async fn chat_completions(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ChatBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, OpenAiError> {
    let ctx = org_context(&s, &headers).await?;
    let Json(body) =
        body.map_err(|e| OpenAiError::bad_request("invalid_json", format!("request body: {}", e.body_text())))?;
    let ask = validate(body)?;
    let forced = headers.get("x-byok-provider").and_then(|v| v.to_str().ok()).map(str::trim).filter(|p| !p.is_empty());
    let provider = match forced {
        Some(p) => p.to_string(),
        None => route(&s.deps.resolver.rates(), &ctx, &ask.model)?,
    };
    let adapter = s.deps.providers.llm.get(&provider).cloned().ok_or_else(|| {
        OpenAiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_provider",
            format!("no LLM adapter for {provider:?}"),
        )
    })?;
    let choice = ServiceChoice { provider: provider.clone(), model: ask.model.clone(), voice: String::new() };
    let plan = s.deps.resolver.resolve_llm(&ctx, &choice, s.deps.vault.as_deref())?;

    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let plan_json = json!({"llm": {"provider": plan.provider, "model": plan.model, "billed_to": plan.billed_to.as_str(),
        "credential": {"id": plan.credential.id, "last4": plan.credential.last4}}});
    let row = SessionRow {
        session_id: id.clone(),
        call_sid: None,
        org_id: ctx.org_id.clone(),
        gateway: "api".into(),
        status: "open".into(),
        started_at_ms: now_ms(),
        ended_at_ms: None,
        end_reason: None,
        plan_json: plan_json.to_string(),
        node_id: Some(s.deps.node_id.clone()),
    };
    s.deps.store.open_session(&row).await.map_err(|e| {
        tracing::error!(error = %e, "open api session failed");
        OpenAiError::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", "store_unavailable", "the store is unavailable")
    })?;
    let meter = RequestMeter::new(&id, &ctx.payer_org_id, &plan, s.deps.store.clone())?;

    let req = LlmRequest {
        base_url: &plan.base_url,
        key: &plan.credential.key,
        model: &plan.model,
        messages: &ask.messages,
        max_tokens: ask.max_tokens,
        tools: llm::Tools { specs: &ask.tools, choice: ask.tool_choice.as_ref(), parallel: ask.parallel_tool_calls },
    };
    let events = match adapter.stream(req).await {
        Ok(ev) => ev,
        Err(e) => {
            let _ = s.deps.store.close_session(&id, now_ms(), "provider_error").await;
            // A refused key or a provider fault is an upstream failure for the caller; a rate
            // limit stays a 429 so SDKs back off, and a bad request stays a 400.
            let (status, kind) = match &e {
                llm::LlmError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
                llm::LlmError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request_error"),
                _ => (StatusCode::BAD_GATEWAY, "api_error"),
            };
            return Err(OpenAiError::new(status, kind, e.code(), format!("{provider}: {e}")));
        }
    };
    let billed = Billed { store: s.deps.store.clone(), id: id.clone(), meter, messages: ask.messages };
    let mut resp = if ask.stream {
        stream_response(events, billed, ask.model.clone(), ask.include_usage)
    } else {
        // Its own task, so a client that hangs up before the answer still gets billed; the hang-up
        // (this handler dropped) cancels the upstream request at once through the guard.
        let model = ask.model.clone();
        let hangup = tokio_util::sync::CancellationToken::new();
        let _hung_up_when_dropped = hangup.clone().drop_guard();
        match tokio::spawn(async move { collect_response(events, billed, &model, hangup).await }).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(OpenAiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "api_error",
                    "internal",
                    "the request failed",
                ))
            }
        }
    };
    let h = resp.headers_mut();
    for (k, v) in [("x-switchboard-provider", provider.as_str()), ("x-switchboard-billed-to", plan.billed_to.as_str())]
    {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    }
    Ok(resp)
}

/// What bills a request when it ends, however it ends.
struct Billed {
    store: std::sync::Arc<dyn billing::store::Store>,
    id: String,
    meter: RequestMeter,
    messages: Vec<Message>,
}

impl Billed {
    /// Bill provider-reported usage, or estimate from the prompt and the text generated.
    async fn finish(mut self, usage: Option<(u64, u64, bool)>, generated: &str, reason: &str) {
        let (input, output, estimated) = usage.unwrap_or_else(|| {
            (llm::estimate_input_tokens(&self.messages), llm::estimate_output_tokens(generated.chars().count()), true)
        });
        let mut tries = 0;
        loop {
            self.meter.bill(input, output, estimated, now_ms()).await;
            tries += 1;
            if self.meter.unsaved() == 0 || tries >= 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 * tries)).await;
        }
        if self.meter.unsaved() > 0 {
            tracing::error!(session_id = %self.id, "api usage could not be written; the session stays open for the restart sweep");
            return;
        }
        if let Err(e) = self.store.close_session(&self.id, now_ms(), reason).await {
            tracing::warn!(error = %e, "closing api session failed");
        }
    }
}

fn created() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn usage_json(input: u64, output: u64) -> TokenUsage {
    TokenUsage { prompt_tokens: input, completion_tokens: output, total_tokens: input + output }
}

async fn collect_response(
    mut events: mpsc::Receiver<LlmEvent>,
    billed: Billed,
    model: &str,
    hangup: tokio_util::sync::CancellationToken,
) -> Result<Response, OpenAiError> {
    let mut text = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut usage = None;
    let mut finish = None;
    let mut error = None;
    loop {
        let ev = tokio::select! {
            ev = events.recv() => ev,
            () = hangup.cancelled() => {
                // Dropping the receiver closes the provider stream; bill what was asked and said.
                drop(events);
                billed.finish(usage, &text, "client_disconnected").await;
                return Err(OpenAiError::new(StatusCode::BAD_REQUEST, "api_error", "client_disconnected", "the client hung up"));
            }
        };
        let Some(ev) = ev else { break };
        match ev {
            LlmEvent::Token(t) => text.push_str(&t),
            LlmEvent::Usage { input_tokens, output_tokens, estimated } => {
                usage = Some((input_tokens, output_tokens, estimated))
            }
            LlmEvent::Done { finish_reason } => finish = finish_reason,
            LlmEvent::Error(e) => error = Some(e),
            LlmEvent::ToolCall(c) => calls.push(c),
        }
    }
    let id = billed.id.clone();
    let reason = if error.is_some() { "provider_error" } else { "completed" };
    billed.finish(usage, &generated(&text, &calls), reason).await;
    if let Some(e) = error {
        return Err(OpenAiError::new(StatusCode::BAD_GATEWAY, "api_error", "provider_error", e.to_string()));
    }
    let (input, output) = match usage {
        Some((i, o, _)) => (i, o),
        None => (0, 0),
    };
    let finish_reason = finish_reason(finish, !calls.is_empty());
    let tool_calls = (!calls.is_empty()).then(|| calls.into_iter().map(ChatToolCall::from).collect());
    let content = (tool_calls.is_none() || !text.is_empty()).then_some(text);
    let choice = Choice {
        index: 0,
        message: AssistantMessage { role: "assistant", content, tool_calls },
        logprobs: None,
        finish_reason,
    };
    let body = ChatCompletion {
        id,
        object: "chat.completion",
        created: created(),
        model: model.to_string(),
        choices: vec![choice],
        usage: usage_json(input, output),
    };
    Ok(Json(body).into_response())
}

/// OpenAI's finish reason: `tool_calls` whenever the answer called tools (Anthropic says
/// `tool_use`, Gemini `STOP`), else the provider's, else `stop`.
fn finish_reason(provider: Option<String>, called: bool) -> String {
    if called {
        return "tool_calls".into();
    }
    provider.unwrap_or_else(|| "stop".into())
}

/// What the model generated, for the output estimate: its text and its calls' arguments.
fn generated(text: &str, calls: &[ToolCall]) -> String {
    calls.iter().fold(text.to_string(), |mut all, c| {
        all.push_str(&c.name);
        all.push_str(&c.arguments);
        all
    })
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// Relay the provider's stream as OpenAI chunks. A task owns the provider stream and the
/// meter, so usage is billed even when the client goes away mid-answer (the provider stream
/// is then dropped, which cancels it, and the text so far is estimated).
fn stream_response(
    mut events: mpsc::Receiver<LlmEvent>,
    billed: Billed,
    model: String,
    include_usage: bool,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(32);
    let id = billed.id.clone();
    tokio::spawn(async move {
        let created = created();
        let chunk = |delta: Value, finish: Option<&str>| {
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        };
        let mut text = String::new();
        let mut calls: Vec<ToolCall> = Vec::new();
        let mut usage = None;
        let mut gone = tx.send(Ok(sse(&chunk(json!({"role": "assistant", "content": ""}), None)))).await.is_err();
        let mut outcome = "completed";
        while !gone {
            let Some(ev) = events.recv().await else { break };
            match ev {
                LlmEvent::Token(t) => {
                    gone = tx.send(Ok(sse(&chunk(json!({"content": t}), None)))).await.is_err();
                    text.push_str(&t);
                }
                LlmEvent::Usage { input_tokens, output_tokens, estimated } => {
                    usage = Some((input_tokens, output_tokens, estimated));
                }
                LlmEvent::Done { finish_reason: provider } => {
                    let reason = finish_reason(provider, !calls.is_empty());
                    gone = tx.send(Ok(sse(&chunk(json!({}), Some(&reason))))).await.is_err();
                }
                LlmEvent::Error(e) => {
                    outcome = "provider_error";
                    let err =
                        json!({"error": {"message": e.to_string(), "type": "api_error", "code": "provider_error"}});
                    gone = tx.send(Ok(sse(&err))).await.is_err();
                }
                LlmEvent::ToolCall(c) => {
                    let delta = json!({"tool_calls": [{"index": calls.len(), "id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments}}]});
                    gone = tx.send(Ok(sse(&chunk(delta, None)))).await.is_err();
                    calls.push(c);
                }
            }
        }
        if gone {
            // A hang-up mid-answer: dropping the provider stream cancels it; unless its count
            // already arrived, what was generated is estimated.
            outcome = "client_disconnected";
            drop(events);
        } else {
            if include_usage {
                let (i, o) = usage.map(|(i, o, _)| (i, o)).unwrap_or((0, 0));
                let v = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                               "choices": [], "usage": usage_json(i, o)});
                let _ = tx.send(Ok(sse(&v))).await;
            }
            let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
        }
        drop(tx);
        billed.finish(usage, &generated(&text, &calls), outcome).await;
    });
    let body = Body::from_stream(tokio_stream_of(rx));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn tokio_stream_of(
    mut rx: mpsc::Receiver<Result<Bytes, Infallible>>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
