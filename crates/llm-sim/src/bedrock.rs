//! AWS Bedrock simulator (protocols/aws-azure.md A4, §K) at a runtime endpoint
//! (`http://127.0.0.1:PORT`, the shape of `https://bedrock-runtime.{region}.amazonaws.com`):
//! `POST /model/{modelId}/converse-stream` answering in event-stream frames (`messageStart`,
//! one `contentBlockDelta` per token, `contentBlockStop`, `messageStop`, `metadata` with usage)
//! and the control plane's `GET /foundation-models` for key checks.
//!
//! Accepted keys are `ACCESS_KEY_ID:SECRET_ACCESS_KEY` strings: a request must carry a SigV4
//! signature (service `bedrock`, any region) that verifies with the secret of its access key id,
//! else AWS's 403 `UnrecognizedClientException` (unknown key id) or `InvalidSignatureException`
//! (wrong secret or tampered request). A key without `:` is a Bedrock API key, accepted as
//! `Authorization: Bearer`. Converse's validation (starts with a user turn, alternates) applies.
//!
//! Tools (`toolConfig`, `toolUse`/`toolResult` blocks) follow the shared rule of `crate::tools`:
//! each call is a block of its own (`contentBlockStart` with the `toolUse`, its input as
//! `contentBlockDelta` fragments, `contentBlockStop`), then `stopReason: "tool_use"`; tool
//! blocks without a `toolConfig`, or unpaired, are `ValidationException`s.

mod request;
#[cfg(test)]
mod tests;

use crate::paced::{self, Frame};
use crate::replies::Turn;
use crate::routes::{get, post, Answer, Routes};
use crate::server::{ok_json, set_header, status_code, Call};
use crate::tools::argument_pieces;
use aws::eventstream::Message as EventMessage;
use aws::verify::{AuthError, IncomingRequest};
use aws::Credentials;
use serde_json::{json, Value};
use simkit::{Reply, Request};
use std::time::{Duration, SystemTime};

/// The service every Bedrock request is signed for.
const SERVICE: &str = "bedrock";
/// `aws::verify::ERROR_TYPE_HEADER` as it went on the wire before (lowercased, as hyper writes
/// header names).
const ERROR_TYPE: &str = "x-amzn-errortype";
/// The request id every answer carries (`x-amzn-RequestId`), lowercased likewise.
const REQUEST_ID: &str = "x-amzn-requestid";
/// Models listed by the key check; any model id is accepted for Converse.
const MODELS: [(&str, &str, &str); 2] = [
    ("amazon.nova-lite-v1:0", "Nova Lite", "Amazon"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", "Anthropic"),
];

pub(crate) static ROUTES: Routes = Routes {
    endpoints: &[post("/model/{model}/converse-stream", converse_stream), get("/foundation-models", foundation_models)],
    fallback: unknown_operation,
};

fn unknown_operation(req: &Request) -> Reply {
    let message =
        format!("Unable to determine service/operation name to be authorized for {} {}", req.method, req.path);
    error(404, "UnknownOperationException", &message)
}

/// A restJson1 refusal: status, `x-amzn-ErrorType`, body `{"message":…}`, a request id.
fn error(status: u16, code: &str, message: &str) -> Reply {
    let coral = format!("{code}:http://internal.amazon.com/coral/com.amazon.coral.service/");
    Reply::json(status, json!({ "message": message }).to_string())
        .header(ERROR_TYPE, coral)
        .header(REQUEST_ID, request_id())
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A refused signature or key, rendered by [`error`] with AWS's status and code.
struct Unauthorized(AuthError);

impl From<Unauthorized> for Reply {
    fn from(Unauthorized(e): Unauthorized) -> Self {
        let status = if (100..=999).contains(&e.status()) { e.status() } else { 403 };
        error(status, e.code(), &e.to_string())
    }
}

/// A refused request body (Converse validation), rendered by [`error`].
struct Refused {
    status: u16,
    code: &'static str,
    message: String,
}

impl From<Refused> for Reply {
    fn from(r: Refused) -> Self {
        error(r.status, r.code, &r.message)
    }
}

/// The accepted key string whose access key id is `akid`, with its credentials.
fn lookup(call: &Call, akid: &str) -> Option<(String, Credentials)> {
    let key = call.stats.keys.find(|k| k.split_once(':').is_some_and(|(id, _)| id == akid))?;
    let creds = Credentials::parse(&key).ok()?;
    Some((key, creds))
}

/// Verifies the request (SigV4 over `body`, or a Bearer API key); records the key it proved
/// (or the access key id / token it named).
fn authorize(call: &Call, body: &[u8]) -> Result<(), Unauthorized> {
    let req = call.req;
    if let Some(token) = call.bearer() {
        return match call.check_key(token) && !token.contains(':') {
            true => Ok(()),
            false => Err(Unauthorized(AuthError::UnrecognizedClient)),
        };
    }
    let pairs: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let payload = aws::sha256_hex(body);
    let incoming = IncomingRequest {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &pairs,
        payload_sha256: &payload,
    };
    match aws::verify(&incoming, SERVICE, SystemTime::now(), |akid| lookup(call, akid).map(|(_, c)| c)) {
        Ok(v) => {
            let key = lookup(call, v.credentials.access_key_id()).map(|(k, _)| k);
            call.stats.saw_key(&key.unwrap_or_else(|| v.credentials.access_key_id().to_string()));
            Ok(())
        }
        Err(e) => {
            if let Some(akid) = named_key_id(req) {
                call.stats.saw_key(&akid);
            }
            Err(Unauthorized(e))
        }
    }
}

/// The access key id a refused `Authorization` header names, for inspection.
fn named_key_id(req: &Request) -> Option<String> {
    let auth = req.header("authorization")?;
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.to_string())
}

fn fault_response(status: u16) -> Reply {
    let status = status_code(status);
    let (code, message) = match status {
        403 => ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
        404 => {
            ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier.")
        }
        429 => ("ThrottlingException", "Too many requests, please wait before trying again."),
        503 => ("ServiceUnavailableException", "Bedrock is unable to process your request."),
        500.. => ("InternalServerException", "The server encountered an internal error."),
        _ => ("ValidationException", "The request was rejected."),
    };
    error(status, code, message)
}

fn invalid(message: impl Into<String>) -> Refused {
    Refused { status: 400, code: "ValidationException", message: message.into() }
}

fn event(kind: &'static str, payload: &Value) -> Frame {
    match EventMessage::event(kind, "application/json", payload.to_string().into_bytes()).encode() {
        Ok(bytes) => Frame::Data(bytes),
        Err(_) => Frame::Cut,
    }
}

/// `POST /model/{model}/converse-stream` (any model).
fn converse_stream(call: &Call) -> Answer {
    let body = &call.req.body;
    let (req, drop_after) = call.admit(|c| authorize(c, body), fault_response, || request::parse(body))?;
    call.sim.keep_body(body);
    let turn = call.sim.turn(&req.conversation, req.max_tokens);
    let stop_reason = match (turn.calls.is_empty(), turn.truncated) {
        (false, _) => "tool_use",
        (true, true) => "max_tokens",
        (true, false) => "end_turn",
    };
    let mut frames = Vec::with_capacity(turn.tokens.len() + 4);
    frames.push((Duration::ZERO, event("messageStart", &json!({"role": "assistant"}))));
    let (events, close_text) = match turn.calls.is_empty() {
        true => (text_events(&turn), true),
        false => (call_events(&turn), false),
    };
    let frame = |_, (kind, payload): &(&'static str, Value)| event(kind, payload);
    if let Some(at) = paced::items(&mut frames, &mut call.sim.pacer(), &events, drop_after, frame) {
        let latency = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        let (input, output) = (turn.prompt_tokens, turn.output_tokens());
        let usage = json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output});
        if close_text {
            frames.push((at, event("contentBlockStop", &json!({"contentBlockIndex": 0}))));
        }
        frames.push((at, event("messageStop", &json!({"stopReason": stop_reason}))));
        frames.push((at, event("metadata", &json!({"usage": usage, "metrics": {"latencyMs": latency}}))));
    }
    let head = Reply::with_type(200, "application/vnd.amazon.eventstream", "").header(REQUEST_ID, request_id());
    Ok(paced::stream(head, frames))
}

/// One text `contentBlockDelta` per token (text blocks come without a start).
fn text_events(turn: &Turn) -> Vec<(&'static str, Value)> {
    let delta = |tok: &String| ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": tok}}));
    turn.tokens.iter().map(delta).collect()
}

/// Block `i` for call `i`: `contentBlockStart` with the `toolUse`, input fragments, stop.
fn call_events(turn: &Turn) -> Vec<(&'static str, Value)> {
    let mut events = Vec::new();
    for (i, call) in turn.calls.iter().enumerate() {
        let start = json!({"toolUse": {"toolUseId": call.id, "name": call.name}});
        events.push(("contentBlockStart", json!({"contentBlockIndex": i, "start": start})));
        for piece in argument_pieces(&call.arguments) {
            let delta = json!({"toolUse": {"input": piece}});
            events.push(("contentBlockDelta", json!({"contentBlockIndex": i, "delta": delta})));
        }
        events.push(("contentBlockStop", json!({"contentBlockIndex": i})));
    }
    events
}

fn foundation_models(call: &Call) -> Answer {
    authorize(call, b"")?;
    let summaries: Vec<Value> = MODELS
        .iter()
        .map(|(id, name, provider)| {
            json!({
                "modelArn": format!("arn:aws:bedrock:us-east-1::foundation-model/{id}"),
                "modelId": id, "modelName": name, "providerName": provider,
                "inputModalities": ["TEXT"], "outputModalities": ["TEXT"],
                "responseStreamingSupported": true, "customizationsSupported": [],
                "inferenceTypesSupported": ["ON_DEMAND"], "modelLifecycle": {"status": "ACTIVE"}
            })
        })
        .collect();
    Ok(set_header(ok_json(&json!({ "modelSummaries": summaries }))?, REQUEST_ID, request_id()))
}
