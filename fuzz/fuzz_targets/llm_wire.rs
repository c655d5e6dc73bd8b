//! Every LLM provider's wire decoder: the first byte picks the provider (see
//! `llm::fuzz::wire`), the rest is what the provider sent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    llm::fuzz::wire(data);
});
