//! Helpers the adapter ↔ simulator loopback tests share.

use crate::{LlmEvent, Message, Role};
use std::time::Duration;
use tokio::sync::mpsc;

/// System prompt, a first exchange, then `user`.
pub(crate) fn conversation(user: &str) -> Vec<Message> {
    let m = |role, content: &str| Message { role, content: content.into() };
    vec![
        m(Role::System, "You are a helpful agent."),
        m(Role::User, "hello"),
        m(Role::Assistant, "You said: hello. How else can I help?"),
        m(Role::User, user),
    ]
}

/// The sims' prompt count for `messages`: Σ(words + 4).
pub(crate) fn sim_prompt_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(|m| m.content.split_whitespace().count() as u64 + 4).sum()
}

/// Every event until the channel closes (10 s bound per event).
pub(crate) async fn collect(mut rx: mpsc::Receiver<LlmEvent>) -> Vec<LlmEvent> {
    let mut out = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an event within 10 s") {
        out.push(ev);
    }
    out
}

pub(crate) fn text(events: &[LlmEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::Token(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}
