//! Assembles streamed tool-call deltas into whole calls.
//!
//! The first delta of a call carries `index`, `id` and `function.name`; later ones carry the same
//! `index` and a fragment of `function.arguments`. Parallel calls use distinct indexes. Servers
//! that omit `index` are followed by `id`: a new id starts a new call, none continues the last.

use super::wire::ToolCallDelta;
use crate::ToolCall;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(super) struct ToolCalls {
    pending: BTreeMap<u32, ToolCall>,
}

impl ToolCalls {
    /// Folds one delta in; returns how many argument characters it added (output estimate).
    pub(super) fn push(&mut self, delta: ToolCallDelta) -> usize {
        let index = delta.index.unwrap_or_else(|| self.unindexed_slot(delta.id.as_deref()));
        let call = self.pending.entry(index).or_default();
        // Some compatible servers repeat id and name on every delta: the first one wins.
        if let Some(id) = delta.id.filter(|id| !id.is_empty()) {
            if call.id.is_empty() {
                call.id = id;
            }
        }
        let Some(function) = delta.function else {
            return 0;
        };
        if let Some(name) = function.name.filter(|n| !n.is_empty()) {
            if call.name.is_empty() {
                call.name = name;
            }
        }
        match function.arguments {
            Some(args) => {
                call.arguments.push_str(&args);
                args.chars().count()
            }
            None => 0,
        }
    }

    fn unindexed_slot(&self, id: Option<&str>) -> u32 {
        let last = self.pending.iter().next_back();
        match (last, id.filter(|id| !id.is_empty())) {
            (Some((&i, call)), Some(id)) if call.id != id && !call.id.is_empty() => i.saturating_add(1),
            (Some((&i, _)), _) => i,
            (None, _) => 0,
        }
    }

    /// The finished calls in index order; a fragment that never got a name is dropped.
    pub(super) fn take(&mut self) -> impl Iterator<Item = ToolCall> {
        std::mem::take(&mut self.pending).into_values().filter(|c| {
            if c.name.is_empty() {
                tracing::warn!("dropping a streamed tool call without a function name");
            }
            !c.name.is_empty()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(json: &str) -> ToolCallDelta {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_new_id_after_the_last_index_does_not_overflow() {
        // Found while writing the `llm_wire` fuzz harness: index u32::MAX, then a new unindexed id.
        let mut calls = ToolCalls::default();
        calls.push(delta(r#"{"index":4294967295,"id":"a","function":{"name":"one","arguments":"{}"}}"#));
        calls.push(delta(r#"{"id":"b","function":{"name":"two"}}"#));
        let got: Vec<_> = calls.take().collect();
        assert_eq!(got, vec![ToolCall::new("a", "one", "{}")]);
    }

    #[test]
    fn deltas_without_index_follow_the_id() {
        let mut calls = ToolCalls::default();
        for d in [
            r#"{"id":"a","function":{"name":"one","arguments":"{\"x\":"}}"#,
            r#"{"function":{"arguments":"1}"}}"#,
            r#"{"id":"b","function":{"name":"two","arguments":"{}"}}"#,
            r#"{"id":"b","function":{"arguments":""}}"#,
        ] {
            calls.push(delta(d));
        }
        let got: Vec<_> = calls.take().collect();
        assert_eq!(got, vec![ToolCall::new("a", "one", "{\"x\":1}"), ToolCall::new("b", "two", "{}"),]);
    }
}
