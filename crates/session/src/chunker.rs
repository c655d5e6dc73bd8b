//! Splits a streamed LLM reply into speakable chunks for TTS: whole sentences as soon as they
//! end, clauses when a sentence runs long, so the first audio starts early without cutting words.

/// Accumulates tokens; `push` returns the chunks that became speakable.
#[derive(Debug, Default)]
pub struct Chunker {
    buf: String,
}

/// A clause boundary is used once the buffer is at least this long.
const CLAUSE_MIN: usize = 40;
/// Past this, any space is a boundary (no punctuation for a long stretch).
const HARD_MAX: usize = 160;

impl Chunker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a token; returns complete chunks (each ends at a boundary, trailing space kept).
    pub fn push(&mut self, token: &str) -> Vec<String> {
        self.buf.push_str(token);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.buf.split_off(end);
            out.push(std::mem::replace(&mut self.buf, rest));
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
                    if matches!(p, b',' | b';' | b':') && i >= CLAUSE_MIN {
                        return Some(i + 1);
                    }
                }
            }
            if i >= HARD_MAX {
                if let Some(s) = last_space {
                    return Some(s);
                }
            }
        }
        None
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
        assert!(c.push("Hello").is_empty());
        assert!(c.push(" there.").is_empty()); // no space yet: might be "there.5"
        assert_eq!(c.push(" How"), vec!["Hello there. ".to_string()]);
        assert_eq!(c.finish().as_deref(), Some("How"));
    }

    #[test]
    fn short_clauses_wait_long_ones_split() {
        let out = run(&["Yes, ", "sure."]);
        assert_eq!(out, vec!["Yes, sure."]);
        let long = "Once upon a time in a land far away from here, there lived a king";
        let out = run(&long.split_inclusive(' ').collect::<Vec<_>>());
        assert_eq!(out[0], "Once upon a time in a land far away from here, ");
        assert_eq!(out.concat(), long);
    }

    #[test]
    fn rejoins_exactly_for_any_split() {
        // Every way of cutting the text into tokens must give back the same text.
        let text = "We are open from nine, Monday to Friday. Call us! Or not? Thanks a lot";
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
