//! Splits a streamed LLM reply into speakable chunks for TTS: the first phrase as soon as it
//! ends, then whole sentences as soon as they end, clauses when a sentence runs long, so the
//! first audio starts early without cutting words.

/// Accumulates tokens; `push` returns the chunks that became speakable.
#[derive(Debug, Default)]
pub struct Chunker {
    buf: String,
    /// Whether a chunk of this reply has gone out: until then any punctuation ends a chunk.
    started: bool,
    /// A chunk went out with a space it had not received yet: the next token's leading space
    /// is that one, so it is dropped and the chunks still add up to the reply.
    owe_space: bool,
}

/// A clause boundary is used once the buffer is at least this long.
const CLAUSE_MIN: usize = 40;
/// Past this, any space is a boundary (no punctuation for a long stretch).
const HARD_MAX: usize = 160;
/// The caller waits for the first chunk: it ends at its first punctuation, or at the last space
/// before this many characters (about two words). The providers voice a phrase that short at
/// once, and the rest of the sentence reaches them long before it has been played. Measured
/// (bench/README.md, session 13): 20 (about four words) cost a median 60 ms of waiting for
/// tokens; 6–12 left no gap against simulators that buffer like the real services; the first
/// word alone left gaps.
const FIRST_MAX: usize = 10;

impl Chunker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a token; returns complete chunks (each ends at a boundary, trailing space kept).
    pub fn push(&mut self, token: &str) -> Vec<String> {
        if token.is_empty() {
            return Vec::new();
        }
        let token = if std::mem::take(&mut self.owe_space) {
            token.strip_prefix(char::is_whitespace).unwrap_or(token)
        } else {
            token
        };
        self.buf.push_str(token);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.buf.split_off(end);
            let mut chunk = std::mem::replace(&mut self.buf, rest);
            if !chunk.ends_with(char::is_whitespace) {
                // A first phrase ended by its pause alone (`Sure,`): it goes with the space
                // that will follow, so a provider voices it now rather than wait for the word
                // to be closed, and the next chunk does not start with a second space.
                chunk.push(' ');
                self.owe_space = true;
            }
            out.push(chunk);
            self.started = true;
        }
        out
    }

    /// Whatever is left at the end of the reply.
    pub fn finish(&mut self) -> Option<String> {
        if self.buf.trim().is_empty() {
            self.buf.clear();
            return None;
        }
        Some(std::mem::take(&mut self.buf))
    }

    /// Byte index just after the first usable boundary (after the space following punctuation).
    fn boundary(&self) -> Option<usize> {
        let (clause_min, hard_max) = if self.started { (CLAUSE_MIN, HARD_MAX) } else { (0, FIRST_MAX) };
        let b = self.buf.as_bytes();
        let mut last_space = None;
        for i in 0..b.len() {
            let c = b[i];
            if c == b' ' {
                last_space = Some(i + 1);
                if i > 0 {
                    let p = b[i - 1];
                    if matches!(p, b'.' | b'!' | b'?') {
                        return Some(i + 1);
                    }
                    if matches!(p, b',' | b';' | b':') && i >= clause_min {
                        return Some(i + 1);
                    }
                }
            }
            if i >= hard_max {
                if let Some(s) = last_space {
                    return Some(s);
                }
            }
        }
        (!self.started && (self.ends_in_a_pause() || self.ends_a_sentence())).then_some(self.buf.len())
    }

    /// The text ends in `,` `;` `:` `!` or `?` right after a letter (`Sure,`): a pause whatever
    /// comes next, so the first phrase need not wait for the next token. After a digit it may be
    /// inside a number (`1,000`, `10:30`); a `.` may be inside a name or a number (`Dr.`, `3.5`):
    /// those wait for the space.
    fn ends_in_a_pause(&self) -> bool {
        let mut rev = self.buf.chars().rev();
        matches!(rev.next(), Some(',' | ';' | ':' | '!' | '?')) && rev.next().is_some_and(char::is_alphabetic)
    }

    /// The reply so far is one word and a `.` (`Done.`, `Sure.`, `No.`): a sentence of its own,
    /// so it need not wait for the next token's space. Only a one-word reply is taken: after
    /// more words a `.` may be inside a name or a number (`acme.com`, `3.5`, `U.S.`).
    fn ends_a_sentence(&self) -> bool {
        self.buf
            .strip_suffix('.')
            .map(str::trim_start)
            .is_some_and(|word| word.chars().count() >= 2 && word.chars().all(char::is_alphabetic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tokens: &[&str]) -> Vec<String> {
        let mut c = Chunker::new();
        let mut out: Vec<String> = tokens.iter().flat_map(|t| c.push(t)).collect();
        out.extend(c.finish());
        out
    }

    #[test]
    fn sentences_come_out_as_soon_as_they_end() {
        let mut c = Chunker::new();
        assert_eq!(c.push("Sure,"), ["Sure, "]);
        assert!(c.push(" here it is.").is_empty()); // no space yet: might be "is.5"
        assert_eq!(c.push(" How"), ["here it is. "]);
        assert_eq!(c.finish().as_deref(), Some("How"));
    }

    #[test]
    fn the_first_phrase_goes_alone_then_short_clauses_wait() {
        let out = run(&["Yes, ", "sure, ", "we ", "can."]);
        assert_eq!(out, vec!["Yes, ", "sure, we can."]);
        let long = "Once upon a time, in a land far away from here, there lived a king";
        let out = run(&long.split_inclusive(' ').collect::<Vec<_>>());
        assert_eq!(out, ["Once upon ", "a time, in a land far away from here, there lived a king"]);
    }

    #[test]
    fn a_first_phrase_ending_in_a_pause_goes_without_waiting_for_the_next_token() {
        let mut c = Chunker::new();
        assert!(c.push("Sure").is_empty());
        // With the space that follows, which is then not sent twice.
        assert_eq!(c.push(","), ["Sure, "]);
        assert!(c.push(" I").is_empty());
        assert_eq!(c.push(" can."), Vec::<String>::new());
        assert_eq!(c.finish().as_deref(), Some("I can."));
        // Only the first phrase, and never inside a number or after a period.
        assert_eq!(run(&["Hi", "!", " Yes", ",", " we", " can", "."]), ["Hi! ", "Yes, we can."]);
        assert_eq!(run(&["3", ",", "000", " seats"]), ["3,000 ", "seats"]);
        assert_eq!(run(&["At", " 10", ":", "30"]), ["At 10:30"]);
        assert_eq!(run(&["Dr", ".", " Who"]), ["Dr. ", "Who"]);
    }

    #[test]
    fn a_first_sentence_ending_in_a_word_goes_without_waiting_for_the_next_token() {
        let mut c = Chunker::new();
        assert!(c.push("Done").is_empty());
        assert_eq!(c.push("."), ["Done. "]);
        assert_eq!(run(&["Done", ".", " Anything", " else", "?"]), ["Done. ", "Anything else?"]);
        // After more than one word, or an initial, a number or a name with dots, the space decides.
        let mut c = Chunker::new();
        for t in ["At", " acme", "."] {
            assert!(c.push(t).is_empty(), "{t}");
        }
        assert_eq!(run(&["Visit", " acme", ".", "com", " today"]), ["Visit ", "acme.com today"]);
        for tokens in [["U", ".", "S"], ["3", ".", "5"], ["e", ".g", "."]] {
            let mut c = Chunker::new();
            assert!(tokens.iter().all(|t| c.push(t).is_empty()), "{tokens:?}");
        }
    }

    #[test]
    fn a_first_phrase_without_punctuation_ends_after_about_two_words() {
        let text = "We are open from nine in the morning to five in the evening.";
        let out = run(&text.split_inclusive(' ').collect::<Vec<_>>());
        assert_eq!(out, ["We are ", "open from nine in the morning to five in the evening."]);
        // A long first word is not cut, nor held for a second.
        assert_eq!(run(&["Unfortunately ", "not."]), ["Unfortunately ", "not."]);
    }

    #[test]
    fn rejoins_exactly_for_any_split() {
        // Every way of cutting the text into tokens must give back the same text.
        for text in
            ["We are open from nine, Monday to Friday. Call us! Or not? Thanks a lot", "Sure, we are open. Bye!"]
        {
            rejoins_exactly(text);
        }
    }

    fn rejoins_exactly(text: &str) {
        for step in 1..8 {
            let toks: Vec<String> = text.chars().collect::<Vec<_>>().chunks(step).map(|c| c.iter().collect()).collect();
            let refs: Vec<&str> = toks.iter().map(String::as_str).collect();
            assert_eq!(run(&refs).concat(), text);
        }
    }

    #[test]
    fn no_punctuation_splits_at_a_space_past_the_limit() {
        let text = "word ".repeat(60);
        let out = run(&[&text]);
        assert!(out.len() >= 2);
        assert!(out.iter().all(|c| c.len() <= HARD_MAX + 1));
        assert_eq!(out.concat(), text);
    }
}
