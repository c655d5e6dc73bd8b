//! What tests driving an adapter (or a plain HTTP client) against a simulator share: the
//! conversation they send, the sim's counts for it, and readers of what comes back. Test
//! support only: the helpers panic on a hang or a malformed frame.

use crate::replies::prompt_tokens;
use llm::{LlmError, LlmEvent, LlmRequest, Message, Role};
use secrecy::SecretString;
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

/// A test's way to an adapter: the `provider`'s (as `llm::registry` builds it), at `base`,
/// with `key` and `model`.
pub struct Adapter<'a> {
    pub provider: &'a str,
    pub base: &'a Url,
    pub key: &'a str,
    pub model: &'a str,
}

impl Adapter<'_> {
    /// Starts a stream of `messages` offering `tools`, on a fresh client.
    pub async fn stream(
        &self,
        messages: &[Message],
        max_tokens: Option<u32>,
        tools: llm::Tools<'_>,
    ) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        self.stream_on(&reqwest::Client::new(), messages, max_tokens, tools).await
    }

    /// [`Adapter::stream`] on `http` (a client with its own deadlines).
    pub async fn stream_on(
        &self,
        http: &reqwest::Client,
        messages: &[Message],
        max_tokens: Option<u32>,
        tools: llm::Tools<'_>,
    ) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let llm = llm::registry::build(self.provider, http).expect("a registered provider");
        let key = SecretString::from(self.key.to_string());
        let request = LlmRequest { base_url: self.base, key: &key, model: self.model, messages, max_tokens, tools };
        llm.stream(request).await
    }
}

/// System prompt, a first exchange, then `user`.
pub fn conversation(user: &str) -> Vec<Message> {
    let m = |role, content: &str| Message::new(role, content);
    vec![
        m(Role::System, "You are a helpful agent."),
        m(Role::User, "hello"),
        m(Role::Assistant, "You said: hello. How else can I help?"),
        m(Role::User, user),
    ]
}

/// The sims' prompt count for `messages`: Σ(words + 4).
pub fn sim_prompt_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(|m| prompt_tokens(&m.content)).sum()
}

/// Every event until the channel closes (10 s bound per event).
pub async fn collect(mut rx: mpsc::Receiver<LlmEvent>) -> Vec<LlmEvent> {
    let mut out = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an event within 10 s") {
        out.push(ev);
    }
    out
}

/// The text of the `Token` events.
pub fn text(events: &[LlmEvent]) -> String {
    events.iter().filter_map(|e| if let LlmEvent::Token(t) = e { Some(t.as_str()) } else { None }).collect()
}

/// The `ToolCall` events, in order.
pub fn tool_calls(events: &[LlmEvent]) -> Vec<llm::ToolCall> {
    events.iter().filter_map(|e| if let LlmEvent::ToolCall(c) = e { Some(c.clone()) } else { None }).collect()
}

/// `(event name, data)` of every event of a whole SSE body, read as plainly as a client would
/// (the sims write one `event:`/`data:` line each, events ending on a blank line).
pub fn sse_events(body: &[u8]) -> Vec<(Option<String>, String)> {
    let body = std::str::from_utf8(body).expect("an SSE body is UTF-8");
    assert!(body.is_empty() || body.ends_with("\n\n"), "the body ends on a blank line");
    body.split_terminator("\n\n")
        .map(|event| {
            let (mut name, mut data) = (None, String::new());
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_string();
                } else {
                    panic!("not an SSE line: {line:?}");
                }
            }
            (name, data)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_names_and_data() {
        let body = b"event: ping\ndata: {}\n\ndata: [DONE]\n\n";
        assert_eq!(sse_events(body), vec![(Some("ping".into()), "{}".into()), (None, "[DONE]".into())]);
        assert!(sse_events(b"").is_empty());
    }
}
