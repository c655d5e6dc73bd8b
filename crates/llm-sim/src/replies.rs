//! The simulator's deterministic conversation: a keyword table for replies, a word-level
//! "tokenizer", and token counts the tests can predict; every API reads its request into a
//! [`Conversation`] and answers with the same [`Turn`].

use crate::tools::{self, Decision, Offered, ToolError};
use llm::{Message, Role, ToolCall};
use serde_json::Value;

const STORY: &str = "Once upon a time, a small boat left the harbour at dawn. The sea was calm and silver, and the old captain sang to the gulls. By noon the wind rose, the waves grew tall, and the crew pulled the sails down together. They rode the storm through the night, and when the sun came back they saw an island no map had ever shown. They named it after the captain's daughter, and they sailed home to tell everyone.";

/// The assistant's reply to the last user message; keywords are matched case-insensitively in
/// table order, so "book tomorrow" asks for a time rather than confirming.
pub fn reply_for(last_user_text: &str) -> String {
    let text = last_user_text.trim();
    let lower = text.to_lowercase();
    let has = |k: &str| lower.contains(k);
    let canned = if has("story") {
        STORY
    } else if has("hours") {
        "We are open from nine in the morning to five in the evening, Monday to Friday."
    } else if has("book") {
        "Sure, I can book a table for you. For which day and time?"
    } else if has("tomorrow") {
        "Done. Your table is booked for tomorrow at seven in the evening."
    } else if has("goodbye") || has("bye") {
        "Goodbye, and have a nice day."
    } else if text.is_empty() {
        "Sorry, I did not catch that."
    } else {
        return format!("You said: {text}. How else can I help?");
    };
    canned.to_string()
}

/// Splits a reply into streamed tokens: each word with its leading whitespace and attached
/// punctuation (`"We"`, `" are"`, `" open"`), so the tokens concatenate to the reply exactly.
pub fn tokens(reply: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_space = true;
    for (i, c) in reply.char_indices() {
        let space = c.is_whitespace();
        if space && !prev_space {
            out.push(&reply[start..i]);
            start = i;
        }
        prev_space = space;
    }
    if start < reply.len() {
        out.push(&reply[start..]);
    }
    out
}

/// The sim's `prompt_tokens` for one message: whitespace-separated words + 4 of framing.
pub fn prompt_tokens(content: &str) -> u64 {
    content.split_whitespace().count() as u64 + 4
}

/// A request's conversation as the sim reads it, system prompt first, and what the model does
/// next ([`Decision`]: call tools, voice their results, or talk).
pub(crate) struct Conversation {
    pub messages: Vec<Message>,
    pub prompt_tokens: u64,
    decision: Decision,
}

impl Conversation {
    /// The prompt counts [`prompt_tokens`] of every message (and of each call's arguments), plus
    /// `unkept_tokens` for what the sim counts but does not keep.
    pub fn new(messages: Vec<Message>, unkept_tokens: u64) -> Self {
        let prompt_tokens = unkept_tokens
            + messages
                .iter()
                .map(|m| prompt_tokens(&m.content) + m.tool_calls.iter().map(call_tokens).sum::<u64>())
                .sum::<u64>();
        Self { messages, prompt_tokens, decision: Decision::Talk }
    }

    /// A conversation with the tools the request offered; refused when its tool calls and
    /// results do not pair up (each API answers that with its own 400).
    pub fn with_tools(messages: Vec<Message>, unkept_tokens: u64, offered: &Offered) -> Result<Self, ToolError> {
        let decision = tools::decide(&messages, offered)?;
        Ok(Self { decision, ..Self::new(messages, unkept_tokens) })
    }

    fn last_user_text(&self) -> &str {
        self.messages.iter().rev().find(|m| m.role == Role::User).map_or("", |m| m.content.as_str())
    }
}

/// The sim's output tokens for one tool call: one for the name, one per word of the arguments.
pub fn call_tokens(call: &ToolCall) -> u64 {
    1 + call.arguments.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).count() as u64
}

/// The sim's answer to a conversation: the reply's tokens, cut to the request's cap, or the tool
/// calls it makes instead (then without text).
pub(crate) struct Turn {
    pub tokens: Vec<String>,
    pub calls: Vec<ToolCall>,
    /// The cap cut the reply (each API names this finish its own way).
    pub truncated: bool,
    pub prompt_tokens: u64,
}

impl Turn {
    pub fn new(conversation: &Conversation, max_tokens: Option<usize>) -> Self {
        let reply = match &conversation.decision {
            Decision::Call(calls) => {
                return Self {
                    tokens: Vec::new(),
                    calls: calls.clone(),
                    truncated: false,
                    prompt_tokens: conversation.prompt_tokens,
                }
            }
            Decision::Results(text) => text.clone(),
            Decision::Talk => reply_for(conversation.last_user_text()),
        };
        let mut toks: Vec<String> = tokens(&reply).into_iter().map(str::to_string).collect();
        let truncated = max_tokens.is_some_and(|max| max < toks.len());
        if let Some(max) = max_tokens {
            toks.truncate(max);
        }
        Self { tokens: toks, calls: Vec::new(), truncated, prompt_tokens: conversation.prompt_tokens }
    }

    pub fn text(&self) -> String {
        self.tokens.concat()
    }

    pub fn output_tokens(&self) -> u64 {
        self.tokens.len() as u64 + self.calls.iter().map(call_tokens).sum::<u64>()
    }
}

/// A message's text: a string, or the `text` of its parts (blocks) joined by spaces.
pub(crate) fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

/// A count field (a token cap), saturating on 32-bit targets.
pub(crate) fn count(v: Option<&Value>) -> Option<usize> {
    v.and_then(Value::as_u64).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_table_in_order() {
        assert_eq!(reply_for("Tell me a STORY about hours"), STORY);
        assert!(reply_for("what are your Hours?").starts_with("We are open from nine"));
        assert_eq!(reply_for("book for tomorrow"), "Sure, I can book a table for you. For which day and time?");
        assert_eq!(reply_for("tomorrow please"), "Done. Your table is booked for tomorrow at seven in the evening.");
        assert_eq!(reply_for("ok bye"), "Goodbye, and have a nice day.");
        assert_eq!(reply_for("Goodbye!"), "Goodbye, and have a nice day.");
        assert_eq!(reply_for("  \n "), "Sorry, I did not catch that.");
        assert_eq!(reply_for("  hello there "), "You said: hello there. How else can I help?");
    }

    #[test]
    fn tokens_are_words_with_leading_space() {
        let reply = reply_for("hours");
        let t = tokens(&reply);
        assert_eq!(&t[..4], &["We", " are", " open", " from"]);
        assert_eq!(t.last(), Some(&" Friday."));
        assert_eq!(t.concat(), reply);
        assert_eq!(t.len(), reply.split_whitespace().count());
        assert!(tokens("").is_empty());
        assert_eq!(tokens("  a  b "), vec!["  a", "  b", " "]);
        assert_eq!(tokens("  a  b ").concat(), "  a  b ");
    }

    #[test]
    fn prompt_token_rule() {
        assert_eq!(prompt_tokens("Tell me a story"), 8);
        assert_eq!(prompt_tokens(""), 4);
    }
}
