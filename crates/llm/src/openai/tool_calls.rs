//! Assembles streamed tool-call deltas into whole calls.
//!
//! The first delta of a call carries `index`, `id` and `function.name`; later ones carry the same
//! `index` and a fragment of `function.arguments`. Parallel calls use distinct indexes.

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
        let call = self.pending.entry(delta.index).or_insert_with(|| ToolCall {
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
        });
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
