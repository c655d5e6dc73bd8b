//! What only one provider does, adapter against its simulator over loopback sockets. What
//! every provider does is the conformance suite's (`crates/tts-sim/tests/conformance.rs`).

mod azure;
mod cartesia;
mod deepgram;
mod elevenlabs;
mod polly;
mod rime;
mod soniox;
mod util;
mod xai;
