//! Gateway auth: is this webhook really from the carrier, and is this media socket the one we
//! answered? Algorithms, canonicalisation and vectors: `protocols/gateway-auth.md` §3–§4.
//!
//! # Layout
//! - [`twilio`], [`telnyx`], [`plivo`], [`vonage`]: one webhook signature scheme each (§3.1–§3.4),
//!   with a signer beside every verifier so tests and our CLI can play the carrier.
//! - [`stream_token`]: the per-call token minted in the answer document and checked on the media
//!   socket (§4), so a leaked stream URL or a replayed answer cannot open a session.
//! - [`tool_webhook`]: our own signature on the webhooks agent tools call (the other direction).
//! - [`AuthError`]: every refusal, with a stable [`AuthError::code`].
//!
//! # Invariants
//! - Secrets are compared in constant time and never appear in `Debug` output or errors.
//! - The caller picks the secret by the request's account id *before* verifying (§0.5); nothing
//!   here tries several tenants' keys.
//! - Clocks are passed in (`now_s`, Unix seconds), so every check is deterministic in tests.

#![forbid(unsafe_code)]

mod error;
mod mac;
pub mod plivo;
pub mod stream_token;
pub mod telnyx;
pub mod tool_webhook;
pub mod twilio;
pub mod vonage;

pub use error::{AuthError, KeySpecError};
