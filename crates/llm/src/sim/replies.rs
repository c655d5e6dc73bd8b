//! The simulator's deterministic conversation: a keyword table for replies, a word-level
//! "tokenizer", and token counts the tests can predict.

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
