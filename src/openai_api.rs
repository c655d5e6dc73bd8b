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
//! - Not forwarded: `tools`, `n > 1` and non-text content parts, refused with a 400 rather than
//!   silently dropped.

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
use llm::{LlmEvent, LlmRequest, Message, Role};
use serde::Deserialize;
use serde_json::{json, Value};
use session::RequestMeter;
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

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

#[derive(Deserialize)]
pub struct ChatBody {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    n: Option<u32>,
    tools: Option<Value>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

/// What was asked, validated.
struct Ask {
    model: String,
    messages: Vec<Message>,
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u32>,
}

fn validate(body: ChatBody) -> Result<Ask, OpenAiError> {
    let model = body
        .model
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| OpenAiError::bad_request("missing_model", "you must provide a model parameter"))?;
    if body.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::bad_request("unsupported_parameter", "n must be 1"));
    }
    if body.tools.as_ref().is_some_and(|t| !t.is_null()) {
        return Err(OpenAiError::bad_request("unsupported_parameter", "tools are not forwarded by this endpoint yet"));
    }
    if body.messages.is_empty() {
        return Err(OpenAiError::bad_request("missing_messages", "messages must be a non-empty array"));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    for (i, m) in body.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(OpenAiError::bad_request(
                    "unsupported_role",
                    format!("messages[{i}].role {other:?} is not supported (system, developer, user, assistant)"),
                ))
            }
        };
        messages.push(Message { role, content: text_of(&m.content, i)? });
    }
    Ok(Ask {
        model,
        messages,
        stream: body.stream,
        include_usage: body.stream_options.is_some_and(|o| o.include_usage),
        max_tokens: body.max_completion_tokens.or(body.max_tokens),
    })
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
        rates.iter().filter(|r| r.service == "llm" && r.model == model).map(|r| r.provider.as_str()).collect();
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
        |p: &str| rates.iter().any(|r| r.service == "llm" && r.provider == p && r.model == model && r.managed);
    let own: Vec<&str> =
        candidates.iter().copied().filter(|p| ctx.byok_credential("llm", p, is_managed(p)).is_some()).collect();
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

/// `GET /api/v1/models`: the LLM models this org can use now (priced, on its plan, with a
/// platform key or one of its own), in OpenAI's list shape; `owned_by` names the provider.
pub async fn models(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, OpenAiError> {
    let ctx = org_context(&s, &headers).await?;
    let rates = s.deps.resolver.rates();
    let mut seen = std::collections::BTreeSet::new();
    let data: Vec<Value> = rates
        .iter()
        .filter(|r| r.service == "llm" && seen.insert((r.provider.clone(), r.model.clone())))
        .filter(|r| billing::org::access(&rates, s.deps.resolver.keys(), &ctx, "llm", &r.provider, &r.model).allowed)
        .map(|r| json!({"id": r.model, "object": "model", "created": 0, "owned_by": r.provider}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

/// `POST /api/v1/chat/completions`.
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

fn usage_json(input: u64, output: u64) -> Value {
    json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output})
}

async fn collect_response(
    mut events: mpsc::Receiver<LlmEvent>,
    billed: Billed,
    model: &str,
    hangup: tokio_util::sync::CancellationToken,
) -> Result<Response, OpenAiError> {
    let mut text = String::new();
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
            LlmEvent::ToolCall(_) => {}
        }
    }
    let id = billed.id.clone();
    let reason = if error.is_some() { "provider_error" } else { "completed" };
    billed.finish(usage, &text, reason).await;
    if let Some(e) = error {
        return Err(OpenAiError::new(StatusCode::BAD_GATEWAY, "api_error", "provider_error", e.to_string()));
    }
    let (input, output) = match usage {
        Some((i, o, _)) => (i, o),
        None => (0, 0),
    };
    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": created(),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null,
                     "finish_reason": finish.unwrap_or_else(|| "stop".into())}],
        "usage": usage_json(input, output),
    });
    Ok(Json(body).into_response())
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
                LlmEvent::Done { finish_reason } => {
                    let reason = finish_reason.unwrap_or_else(|| "stop".into());
                    gone = tx.send(Ok(sse(&chunk(json!({}), Some(&reason))))).await.is_err();
                }
                LlmEvent::Error(e) => {
                    outcome = "provider_error";
                    let err =
                        json!({"error": {"message": e.to_string(), "type": "api_error", "code": "provider_error"}});
                    gone = tx.send(Ok(sse(&err))).await.is_err();
                }
                LlmEvent::ToolCall(_) => {}
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
        billed.finish(usage, &text, outcome).await;
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
