//! Google Gemini (AI Studio) simulator (protocols/llm.md D3):
//! `POST /v1beta/models/{model}:streamGenerateContent` (SSE with `alt=sse`, else one JSON
//! array), `:generateContent`, `GET /v1beta/models`, Google's error bodies (a bad key is 400
//! `INVALID_ARGUMENT` / `API_KEY_INVALID`), scripted faults; answering the way
//! generativelanguage.googleapis.com does. The base URL is the bare host.
//!
//! Tools (`tools[].functionDeclarations`, `toolConfig`, `functionCall`/`functionResponse`
//! parts) follow the shared rule of `crate::tools`: the calls come whole, as parts of one chunk,
//! without ids (as older models send them; results are matched by name) and with
//! `finishReason: "STOP"`; the first carries a `thoughtSignature`, which `gemini-3…` models
//! require back.

mod request;
#[cfg(test)]
mod tests;

use crate::paced::{self, sse, Frame, Pacer};
use crate::replies::Turn;
use crate::routes::{get, post, Answer, Routes};
use crate::server::{ok_json, status_code, Call};
use serde_json::{json, Value};
use simkit::{Reply, Request};
use std::time::Duration;

const MODELS: [&str; 3] = ["gemini-2.5-flash", "gemini-2.0-flash", "gemini-2.5-pro"];
/// The `thoughtSignature` on the sim's function calls (base64 of "sim-thought").
const SIM_SIGNATURE: &str = "c2ltLXRob3VnaHQ=";
/// `RetryInfo.retryDelay` sent with a scripted 429.
const RETRY_DELAY: &str = "2s";

pub(crate) static ROUTES: Routes = Routes {
    endpoints: &[post("/v1beta/models/{action}", generate), get("/v1beta/models", models)],
    fallback: |_: &Request| not_found(),
};

/// A refusal, rendered by [`error`].
struct ApiError {
    status: u16,
    kind: &'static str,
    message: String,
    details: Vec<Value>,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        error(e.status, e.kind, &e.message, e.details)
    }
}

/// `{"error":{"code","message","status","details"}}`.
fn error(status: u16, kind: &str, message: &str, details: Vec<Value>) -> Reply {
    let mut err = json!({"code": status, "message": message, "status": kind});
    if !details.is_empty() {
        err["details"] = Value::Array(details);
    }
    Reply::json(status, json!({ "error": err }).to_string())
}

/// The `x-goog-api-key` header, else the `key` query parameter.
fn key_of(call: &Call) -> Option<String> {
    let query = || call.query("key").map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    call.header_key("x-goog-api-key").map(str::to_string).or_else(query)
}

/// Checks the key; the key is never echoed back.
fn authorize(call: &Call) -> Result<(), ApiError> {
    let Some(key) = key_of(call) else {
        return Err(ApiError {
            status: 403,
            kind: "PERMISSION_DENIED",
            message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.".into(),
            details: vec![],
        });
    };
    if call.check_key(&key) {
        return Ok(());
    }
    let message = "API key not valid. Please pass a valid API key.";
    Err(ApiError {
        status: 400,
        kind: "INVALID_ARGUMENT",
        message: message.into(),
        details: vec![
            json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}),
            json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}),
        ],
    })
}

fn fault_response(status: u16) -> Reply {
    let status = status_code(status);
    let (kind, message) = match status {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
        403 => ("PERMISSION_DENIED", "The caller does not have permission"),
        404 => ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
        429 => ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details."),
        503 => ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        _ => ("INTERNAL", "An internal error has occurred."),
    };
    let details = if status == 429 {
        vec![json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": RETRY_DELAY})]
    } else {
        vec![]
    };
    error(status, kind, message, details)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError { status: 400, kind: "INVALID_ARGUMENT", message: message.into(), details: vec![] }
}

/// `POST /v1beta/models/{model}:{method}`.
fn generate(call: &Call) -> Answer {
    let (model, method) = call.param(0).split_once(':').ok_or_else(not_found)?;
    let body = &call.req.body;
    let parse = || request::parse(body, model.strip_prefix("models/").unwrap_or(model));
    let (req, drop_after) = call.admit(authorize, fault_response, parse)?;
    call.sim.keep_body(body);
    let turn = call.sim.turn(&req.conversation, req.max_tokens);
    // Gemini finishes a function-calling answer with `STOP` too.
    let finish = if turn.truncated { "MAX_TOKENS" } else { "STOP" };
    let answer = Generation {
        model: model.to_string(),
        id: uuid::Uuid::new_v4().simple().to_string(),
        finish,
        turn,
        drop_after,
    };
    match method {
        "generateContent" if !answer.turn.calls.is_empty() => ok_json(&answer.calls_chunk()),
        "generateContent" => ok_json(&answer.chunk(&answer.turn.text(), true, answer.turn.tokens.len())),
        "streamGenerateContent" if call.query("alt").as_deref() == Some("sse") => {
            Ok(paced::sse_stream(answer.schedule(call.sim.pacer())))
        }
        "streamGenerateContent" if !answer.turn.calls.is_empty() => ok_json(&Value::Array(vec![answer.calls_chunk()])),
        "streamGenerateContent" => {
            let n = answer.turn.tokens.len();
            let chunks: Vec<Value> =
                answer.turn.tokens.iter().enumerate().map(|(i, t)| answer.chunk(t, i + 1 == n, i + 1)).collect();
            ok_json(&Value::Array(chunks))
        }
        _ => Err(not_found()),
    }
}

fn not_found() -> Reply {
    error(404, "NOT_FOUND", "The requested URL was not found on this server.", vec![])
}

struct Generation {
    model: String,
    id: String,
    finish: &'static str,
    turn: Turn,
    drop_after: Option<usize>,
}

impl Generation {
    /// One `GenerateContentResponse`; usage is cumulative, as Gemini reports it.
    fn chunk(&self, text: &str, last: bool, output_so_far: usize) -> Value {
        self.response(vec![json!({ "text": text })], last, output_so_far as u64)
    }

    /// The response carrying every call, whole: one `functionCall` part each (no id), the first
    /// with a `thoughtSignature`.
    fn calls_chunk(&self) -> Value {
        let parts = self.turn.calls.iter().enumerate().map(|(i, call)| {
            let args: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
            let mut part = json!({"functionCall": {"name": call.name, "args": args}});
            if i == 0 {
                part["thoughtSignature"] = json!(SIM_SIGNATURE);
            }
            part
        });
        self.response(parts.collect(), true, self.turn.output_tokens())
    }

    fn response(&self, parts: Vec<Value>, last: bool, output_so_far: u64) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if last {
            candidate["finishReason"] = json!(self.finish);
        }
        let prompt = self.turn.prompt_tokens;
        json!({
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": prompt,
                "candidatesTokenCount": output_so_far,
                "totalTokenCount": prompt + output_so_far,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]
            },
            "modelVersion": self.model,
            "responseId": self.id
        })
    }

    /// One chunk per token, the last carrying `finishReason`; the body then just ends. Calls
    /// come in one chunk.
    fn schedule(&self, mut pacer: Pacer) -> Vec<(Duration, Frame)> {
        if !self.turn.calls.is_empty() {
            let mut frames = Vec::with_capacity(2);
            let chunk = |_, c: &Value| Frame::Data(sse(None, c));
            paced::items(&mut frames, &mut pacer, &[self.calls_chunk()], self.drop_after, chunk);
            return frames;
        }
        let toks = &self.turn.tokens;
        let mut frames = Vec::with_capacity(toks.len() + 1);
        let chunk = |i: usize, token: &String| {
            let last = i + 1 == toks.len() && self.drop_after.is_none();
            Frame::Data(sse(None, &self.chunk(token, last, i + 1)))
        };
        let end = paced::items(&mut frames, &mut pacer, toks, self.drop_after, chunk);
        if let (Some(at), true) = (end, toks.is_empty()) {
            frames.push((at, Frame::Data(sse(None, &self.chunk("", true, 0)))));
        }
        frames
    }
}

fn models(call: &Call) -> Answer {
    authorize(call)?;
    let size = call.query("pageSize").and_then(|s| s.parse::<usize>().ok()).unwrap_or(50).max(1);
    let models: Vec<Value> = MODELS
        .iter()
        .take(size)
        .map(|m| json!({"name": format!("models/{m}"), "version": "001", "displayName": m, "supportedGenerationMethods": ["generateContent", "countTokens"]}))
        .collect();
    let mut body = json!({ "models": models });
    if size < MODELS.len() {
        body["nextPageToken"] = json!("sim-next-page");
    }
    ok_json(&body)
}
