//! Conservative token estimates for streams that end without provider-reported usage (dropped
//! connection, cancelled turn, provider without a usage chunk).
//!
//! Rule: one token per 3 characters, rounded up, plus 4 tokens of per-message framing for input.
//! English BPE tokenizers average about 4 characters a token, so this over-counts: billing errs
//! toward the provider's real invoice, never below it.

use crate::Message;

/// Chat framing (role markers, separators) each message costs on top of its text.
const PER_MESSAGE_TOKENS: u64 = 4;
const CHARS_PER_TOKEN: u64 = 3;

/// Estimated prompt tokens: Σ (ceil(chars / 3) + 4) over the messages.
pub fn estimate_input_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(|m| text_tokens(m.content.chars().count()) + PER_MESSAGE_TOKENS).sum()
}

/// Estimated completion tokens for `chars` characters of generated text (incl. tool arguments).
pub fn estimate_output_tokens(chars: usize) -> u64 {
    text_tokens(chars)
}

fn text_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(CHARS_PER_TOKEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    #[test]
    fn rule() {
        let m = |c: &str| Message::new(Role::User, c);
        assert_eq!(estimate_input_tokens(&[]), 0);
        assert_eq!(estimate_input_tokens(&[m(""), m("abcd")]), 4 + (2 + 4));
        assert_eq!(estimate_input_tokens(&[m("ééé")]), 1 + 4);
        assert_eq!(estimate_output_tokens(0), 0);
        assert_eq!(estimate_output_tokens(7), 3);
    }
}
