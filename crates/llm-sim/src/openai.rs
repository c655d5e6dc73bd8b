//! OpenAI API simulator: Chat Completions (protocols/llm.md D1) `POST /v1/chat/completions` and
//! Responses (llm-more.md E1) `POST /v1/responses`, streaming or not, `GET /v1/models` and the
//! key checks of the compatible family, OpenAI's error bodies and scripted faults; function
//! calls as the shared rule (`crate::tools`) decides them, in both wire shapes
//! (`function_calling`); answering the way api.openai.com does. The Azure API reuses its bodies.

mod function_calling;
pub(crate) mod responses;
#[cfg(test)]
mod responses_tests;
mod stream;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tool_tests;

use crate::paced;
use crate::replies::{count, text_of, Conversation};
use crate::routes::{get, post, Answer, Routes};
use crate::server::{ok_json, status_code, Call, Shared};
use function_calling::Shape;
use llm::{Message, ToolCall};
use serde_json::{json, Value};
use simkit::{Reply, Request};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};
use stream::Plan;

/// Models listed by `GET /v1/models`; any model name is accepted for completions.
const MODELS: [&str; 3] = ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o"];
/// The hint sent with a scripted 429.
const RETRY_AFTER_MS: &str = "1200";

pub(crate) static ROUTES: Routes = Routes {
    endpoints: &[
        post("/v1/chat/completions", chat),
        post("/v1/responses", create_response),
        get("/v1/models", models),
        // The key checks of family members this simulator stands in for.
        get("/v1/key", openrouter_key),
        get("/v1/api-key", xai_api_key),
    ],
    fallback: not_found,
};

/// An answer in OpenAI's error shape `{"error":{message,type,param,code}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(status: u16, message: impl Into<String>, kind: &'static str, code: Option<&'static str>) -> Self {
        Self { status, message: message.into(), kind, param: None, code }
    }

    pub(crate) fn invalid(message: impl Into<String>, param: Option<String>, code: Option<&'static str>) -> Self {
        Self { param, ..Self::new(400, message, "invalid_request_error", code) }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        let body = json!({"error": {"message": e.message, "type": e.kind, "param": e.param, "code": e.code}});
        Reply::json(e.status, body.to_string())
    }
}

/// Checks `Authorization: Bearer <key>`; the key is never echoed back.
fn authorize(call: &Call) -> Result<(), ApiError> {
    let Some(key) = call.bearer() else {
        return Err(ApiError::new(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
        ));
    };
    if call.check_key(key) {
        Ok(())
    } else {
        Err(ApiError::new(401, "Incorrect API key provided.", "invalid_request_error", Some("invalid_api_key")))
    }
}

pub(crate) fn fault_response(status: u16) -> Reply {
    let status = status_code(status);
    let (message, kind, code) = match status {
        401 => ("Incorrect API key provided.", "invalid_request_error", Some("invalid_api_key")),
        403 => ("You are not allowed to sample from this model", "invalid_request_error", None),
        404 => (
            "The model does not exist or you do not have access to it.",
            "invalid_request_error",
            Some("model_not_found"),
        ),
        429 => ("Rate limit reached for requests. Please try again later.", "requests", Some("rate_limit_exceeded")),
        500.. => ("The server had an error while processing your request. Sorry about that!", "server_error", None),
        _ => ("Your request was rejected.", "invalid_request_error", None),
    };
    let reply = Reply::from(ApiError::new(status, message, kind, code));
    match status {
        429 => reply.header("retry-after-ms", RETRY_AFTER_MS),
        _ => reply,
    }
}

/// What the sim needs from a chat request.
pub(crate) struct ChatRequest {
    pub model: String,
    pub conversation: Conversation,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<usize>,
}

/// Validates a chat body. `deployment` is Azure's classic path segment: it names the model, and
/// the body's `model` is then optional and ignored.
pub(crate) fn parse(body: &[u8], deployment: Option<&str>) -> Result<ChatRequest, ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            None,
            None,
        ));
    };
    let Some(model) = deployment.or(req.get("model").and_then(Value::as_str)).filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid("you must provide a model parameter", None, None));
    };
    let Some(raw) = req.get("messages").and_then(Value::as_array) else {
        return Err(ApiError::invalid(
            "Missing required parameter: 'messages'.",
            Some("messages".into()),
            Some("missing_required_parameter"),
        ));
    };
    if raw.is_empty() {
        return Err(ApiError::invalid("[] is too short - 'messages'", Some("messages".into()), Some("empty_array")));
    }
    let offered = function_calling::offered(&req, Shape::Chat)?;
    let mut messages = Vec::with_capacity(raw.len());
    // Legacy `function` results count toward the prompt but are not conversation messages.
    let mut function_tokens = 0;
    for (i, m) in raw.iter().enumerate() {
        match message(i, m)? {
            Some(message) => messages.push(message),
            None => function_tokens += crate::replies::prompt_tokens(&text_of(m.get("content"))),
        }
    }
    // The refusal names the unpaired call, so it needs the messages the conversation takes.
    let conversation = Conversation::with_tools(messages.clone(), function_tokens, &offered)
        .map_err(|e| function_calling::refused(e, &messages, Shape::Chat))?;
    Ok(ChatRequest {
        model: model.to_string(),
        conversation,
        stream: req.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: req
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        max_tokens: ["max_completion_tokens", "max_tokens"].iter().find_map(|k| count(req.get(*k))),
    })
}

/// One wire message, or `None` for a legacy `function` result (counted, not kept).
fn message(i: usize, m: &Value) -> Result<Option<Message>, ApiError> {
    let missing = |field: &str| {
        let name = format!("messages[{i}].{field}");
        ApiError::invalid(
            format!("Missing required parameter: '{name}'."),
            Some(name),
            Some("missing_required_parameter"),
        )
    };
    let role = m.get("role").and_then(Value::as_str).ok_or_else(|| missing("role"))?;
    let text = text_of(m.get("content"));
    Ok(Some(match role {
        "system" | "developer" => Message::system(text),
        "user" => Message::user(text),
        "assistant" => {
            let calls = m.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let calls =
                calls.iter().enumerate().map(|(j, c)| tool_call(c).map_err(|f| missing(&format!("tool_calls[{j}].{f}"))));
            Message::assistant_calls(text, calls.collect::<Result<_, _>>()?)
        }
        "tool" => {
            let id = m.get("tool_call_id").and_then(Value::as_str).ok_or_else(|| missing("tool_call_id"))?;
            Message::tool_result(id, text)
        }
        "function" => return Ok(None),
        other => {
            return Err(ApiError::invalid(
                format!("Invalid value: '{other}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."),
                Some(format!("messages[{i}].role")),
                Some("invalid_value"),
            ))
        }
    }))
}

/// `{id, type: "function", function: {name, arguments}}`, or the missing field.
fn tool_call(c: &Value) -> Result<ToolCall, &'static str> {
    let text = |v: Option<&Value>, field| v.and_then(Value::as_str).map(str::to_string).ok_or(field);
    let function = c.get("function");
    Ok(ToolCall::new(
        text(c.get("id"), "id")?,
        text(function.and_then(|f| f.get("name")), "function.name")?,
        text(function.and_then(|f| f.get("arguments")), "function.arguments")?,
    ))
}

fn chat(call: &Call) -> Answer {
    let body = &call.req.body;
    let read = || {
        call.sim.keep_body(body);
        parse(body, None)
    };
    let (req, drop_after) = call.admit(authorize, fault_response, read)?;
    chat_answer(call.sim, req, drop_after, false)
}

/// The answer to an accepted chat request, streamed or whole; `azure` gives Azure's stream
/// shape (prompt-filter chunk, filter verdicts) and its model-version naming.
pub(crate) fn chat_answer(shared: &Shared, req: ChatRequest, drop_after: Option<usize>, azure: bool) -> Answer {
    let turn = shared.turn(&req.conversation, req.max_tokens);
    let finish_reason = match (turn.calls.is_empty(), turn.truncated) {
        (false, _) => "tool_calls",
        (true, true) => "length",
        (true, false) => "stop",
    };
    let model = if azure { azure_model_version(&req.model) } else { req.model.clone() };
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let id = format!("chatcmpl-sim{}", uuid::Uuid::new_v4().simple());
    let usage = json!({
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.output_tokens(),
        "total_tokens": turn.prompt_tokens + turn.output_tokens(),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    });
    if !req.stream {
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": whole_message(&turn.text(), &turn.calls),
                "logprobs": null,
                "finish_reason": finish_reason
            }],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_sim"
        });
        return ok_json(&body);
    }
    let x_groq = shared.x_groq_usage.load(Ordering::Relaxed);
    let plan = Plan {
        id,
        created,
        model,
        tokens: turn.tokens,
        calls: turn.calls,
        finish_reason,
        // Groq reports `x_groq.usage` whether or not `include_usage` was asked for.
        usage: (req.include_usage || x_groq).then_some(usage),
        x_groq,
        drop_after,
        azure,
    };
    Ok(paced::sse_stream(plan.schedule(shared.pacer())))
}

/// A whole (non-streamed) assistant message: the text, or `content: null` and the calls.
fn whole_message(text: &str, calls: &[ToolCall]) -> Value {
    if calls.is_empty() {
        return json!({"role": "assistant", "content": text, "refusal": null, "annotations": []});
    }
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect();
    json!({"role": "assistant", "content": null, "tool_calls": calls, "refusal": null, "annotations": []})
}

/// The model version Azure reports for a deployment of a known model (it never echoes the
/// deployment name).
fn azure_model_version(deployment: &str) -> String {
    match deployment {
        "gpt-4o-mini" => "gpt-4o-mini-2024-07-18".into(),
        "gpt-4.1-mini" => "gpt-4.1-mini-2025-04-14".into(),
        "gpt-4o" => "gpt-4o-2024-11-20".into(),
        other => other.into(),
    }
}

fn create_response(call: &Call) -> Answer {
    let body = &call.req.body;
    let read = || {
        call.sim.keep_body(body);
        responses::parse(body)
    };
    let (req, drop_after) = call.admit(authorize, fault_response, read)?;
    responses::answer(call.sim, req, drop_after)
}

fn models(call: &Call) -> Answer {
    authorize(call)?;
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 1_721_172_741, "owned_by": "system"}))
        .collect();
    ok_json(&json!({"object": "list", "data": data}))
}

/// OpenRouter's `GET /api/v1/key`: the key's own limits and usage.
fn openrouter_key(call: &Call) -> Answer {
    authorize(call)?;
    ok_json(&json!({"data": {"label": "sim", "usage": 0, "limit": null, "is_free_tier": false}}))
}

/// xAI's `GET /v1/api-key`: the key's status.
fn xai_api_key(call: &Call) -> Answer {
    authorize(call)?;
    ok_json(&json!({"name": "sim", "api_key_blocked": false, "api_key_disabled": false, "team_blocked": false}))
}

fn not_found(req: &Request) -> Reply {
    let message = format!("Invalid URL ({} {})", req.method, req.path);
    ApiError::new(404, message, "invalid_request_error", None).into()
}
