//! The one client for provider websockets, shared by every STT and TTS adapter.
//!
//! An adapter is its wire types plus its dialect: it builds a URL and headers, calls [`open`],
//! and hands the socket to its service's [`Driver`], which [`run`] drives. Nothing here knows a
//! provider or a service; the services map [`OpenError`] into their own error types.
//!
//! # Layout
//! - [`endpoint`], [`open`], [`OpenError`], [`secret_header`] — the provider URL from its base,
//!   then connect and upgrade within a timeout, with small buffers ([`config`]); a refused
//!   upgrade keeps its status and body for the mapping.
//! - [`Driver`], [`run`] — the frame loop: provider frames, session input and one timer in,
//!   wire messages and session events out, last messages and events at the end. Events go to
//!   one stream's channel, or each to its own ([`Events`], [`Router`]) when one socket serves
//!   many streams.
//!
//! # Invariants
//! - Every wait on the provider is bounded: the handshake by the caller's timeout, the loop by
//!   the driver's deadline, the goodbye and close frame by [`CLOSE_GRACE`].
//! - The loop adds no allocation, lock or spawn per frame: it reuses one [`Io`] and one pinned
//!   timer, re-armed only when the driver's deadline changes.

mod open;
mod pump;

pub use open::{config, endpoint, headers, open, secret_header, OpenError, Refusal, Scheme, Ws};
pub use pump::{run, Driver, End, Events, Flow, Io, Routed, Router, CLOSE_GRACE};
pub use tokio_tungstenite::tungstenite::{self, http::HeaderMap, http::HeaderValue, Message};
