//! Azure OpenAI simulator (protocols/aws-azure.md Z3) at a resource endpoint
//! (`http://127.0.0.1:PORT`, the shape of `https://{resource}.openai.azure.com`):
//! - classic `POST /openai/deployments/{deployment}/chat/completions?api-version=…` and
//!   `GET /openai/models?api-version=…` (a missing api-version is a 404),
//! - v1 `POST /openai/v1/chat/completions`, `POST /openai/v1/responses`, `GET /openai/v1/models`,
//!
//! keyed by the `api-key` header (a bad key gets Azure's 401 body), streaming Azure's chunk shape
//! (prompt-filter chunk with empty `choices`, filter verdicts, the model version as `model`): the
//! OpenAI API's bodies in their Azure shape. Any non-empty deployment name is deployed.

#[cfg(test)]
mod tests;

use crate::openai::{chat_answer, parse, responses};
use crate::routes::{get, post, Answer, Routes};
use crate::server::{ok_json, set_header, status_code, Call};
use serde_json::{json, Value};
use simkit::{Reply, Request, Route};

/// Models listed by the key check; any deployment name is accepted for completions.
const MODELS: [&str; 3] = ["gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14", "gpt-4o-2024-11-20"];
/// The hint sent with a scripted 429, as Azure sends it (seconds and milliseconds).
const RETRY_AFTER_S: &str = "2";
/// Azure's answer to a wrong or missing key.
const BAD_KEY: &str = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.";

pub(crate) static ROUTES: Routes = Routes {
    endpoints: &[
        post("/openai/deployments/{deployment}/chat/completions", classic_chat),
        post("/openai/v1/chat/completions", v1_chat),
        post("/openai/v1/responses", v1_responses),
        get("/openai/models", classic_models),
        get("/openai/v1/models", models),
    ],
    fallback: not_found,
};

fn not_found(_: &Request) -> Reply {
    error(404, "404", "Resource not found")
}

/// A refusal in Azure's shape `{"error":{"code","message"}}`.
struct AzError {
    status: u16,
    code: &'static str,
    message: &'static str,
}

impl From<AzError> for Reply {
    fn from(e: AzError) -> Self {
        let reply = error(e.status, e.code, e.message);
        match e.status {
            429 => reply.header("retry-after", RETRY_AFTER_S),
            _ => reply,
        }
    }
}

/// Azure's error body, with the `apim-request-id` every answer carries.
fn error(status: u16, code: &str, message: &str) -> Reply {
    let body = json!({"error": {"code": code, "message": message}});
    Reply::json(status, body.to_string()).header("apim-request-id", request_id())
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Checks `api-key`; the key is never echoed back.
fn authorize(call: &Call) -> Result<(), AzError> {
    if call.header_key("api-key").is_some_and(|key| call.check_key(key)) {
        return Ok(());
    }
    Err(AzError { status: 401, code: "401", message: BAD_KEY })
}

/// The dated api-version query every classic route requires.
fn api_version(call: &Call) -> Result<(), AzError> {
    match call.query("api-version").filter(|v| !v.is_empty()) {
        Some(_) => Ok(()),
        None => Err(AzError { status: 404, code: "404", message: "Resource not found" }),
    }
}

fn fault_response(status: u16) -> Reply {
    let status = status_code(status);
    let (code, message) = match status {
        401 => ("401", BAD_KEY),
        404 => ("DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."),
        429 => ("429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 2 seconds."),
        500.. => ("InternalServerError", "The server had an error while processing your request. Sorry about that!"),
        _ => ("BadRequest", "Your request was rejected."),
    };
    AzError { status, code, message }.into()
}

fn classic_chat(call: &Call) -> Answer {
    api_version(call)?;
    chat(call, Some(call.param(0)))
}

fn v1_chat(call: &Call) -> Answer {
    chat(call, None)
}

/// Chat Completions, answered by the OpenAI API in Azure's shape.
fn chat(call: &Call, deployment: Option<&str>) -> Answer {
    let body = &call.req.body;
    let read = || {
        call.sim.keep_body(body);
        parse(body, deployment)
    };
    let admitted = call.admit(authorize, fault_response, read);
    stamped(admitted.and_then(|(req, drop_after)| chat_answer(call.sim, req, drop_after, true)))
}

fn v1_responses(call: &Call) -> Answer {
    let body = &call.req.body;
    let read = || {
        call.sim.keep_body(body);
        responses::parse(body)
    };
    let admitted = call.admit(authorize, fault_response, read);
    stamped(admitted.and_then(|(req, drop_after)| responses::answer(call.sim, req, drop_after)))
}

/// The answer or refusal with the `apim-request-id` every Azure answer carries.
fn stamped(answer: Answer) -> Answer {
    let route = answer.unwrap_or_else(Route::Reply);
    Ok(set_header(route, "apim-request-id", request_id()))
}

fn classic_models(call: &Call) -> Answer {
    api_version(call)?;
    models(call)
}

fn models(call: &Call) -> Answer {
    authorize(call)?;
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| {
            json!({
                "id": m, "object": "model", "status": "succeeded", "created_at": 1_721_172_741,
                "capabilities": {"chat_completion": true, "completion": false, "embeddings": false,
                                 "fine_tune": false, "inference": true},
                "lifecycle_status": "generally-available",
                "deprecation": {"inference": 1_777_593_600}
            })
        })
        .collect();
    stamped(ok_json(&json!({"data": data, "object": "list"})))
}
