//! OpenAI Responses API streaming (protocols/llm-more.md E1): `POST {base}/responses` with
//! `stream: true`, named SSE events, no `[DONE]` (the body ends after `response.completed`,
//! `.incomplete` or `.failed`). Served by OpenAI and by Azure's v1 endpoint.
//!
//! Every turn resends the whole conversation as input items with `store: false`: the history
//! lives in the session, and an unstored response leaves nothing to chain or to leak.

pub(crate) mod decoder;
mod wire;

use super::refused;
use crate::estimate::estimate_input_tokens;
use crate::{pump, LlmError, LlmEvent, LlmRequest};
use reqwest::header::{HeaderName, HeaderValue};
use tokio::sync::mpsc;
use url::Url;

/// Posts a streaming Responses request for `model` (the prefix already removed) to `url`.
pub(crate) async fn start(
    client: &reqwest::Client,
    url: Url,
    auth: (HeaderName, HeaderValue),
    model: &str,
    req: &LlmRequest<'_>,
) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
    if model.is_empty() {
        return Err(LlmError::BadRequest("no model given after the responses: prefix".into()));
    }
    let body = wire::ResponsesRequest::new(model, req);
    let decoder = decoder::Decoder::new(estimate_input_tokens(req.messages));
    pump::start_sse(client.post(url).header(auth.0, auth.1).json(&body), refused, decoder).await
}
