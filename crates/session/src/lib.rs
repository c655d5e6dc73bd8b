//! Session runtime: one call, from gateway connect to ledger settle.
//!
//! # Layout
//! - [`transport`] — gateway wire protocols (Twilio Media Streams, the client websocket) as
//!   [`transport::WireCodec`]s: ws message ⇄ PCM frames and control.
//! - `runtime` — opens a session (plan, store row, STT connect) and runs its tasks:
//!   gateway read (decode, resample, VAD, STT feed), turn manager, gateway write (playout clock).
//! - `turn` — end of turn, LLM → `chunker` → TTS, barge-in with truncation to what was played.
//! - `meter` — usage lines priced from the plan's rate snapshot, checkpointed to the store.
//! - [`admission`] — who may open a session (tokens, keys, sandbox), decided at `start`.
//! - [`drain`] — graceful shutdown: stop admitting, let calls finish, end the rest politely.
//! - [`hub`] — live [`SessionEvent`]s by session, for watchers (`switchboard call`, operators).
//!
//! # Invariants
//! - The gateway read loop never awaits a provider; a full queue drops the frame and counts it.
//! - The [`billing::SessionPlan`] is fixed at open: keys rotated later do not touch this call.
//! - Usage keys `session_id:line:seq` make replays no-ops; a crash loses at most one checkpoint.

pub mod admission;
pub mod chunker;
mod deps;
pub mod drain;
mod events;
mod failover;
pub mod hub;
mod meter;
pub mod metrics;
mod output;
mod runtime;
pub mod transport;
mod turn;

pub use admission::{AccessConfig, UpgradeAuth};
pub use deps::{Providers, SessionDeps};
pub use events::SessionEvent;
pub use hub::SessionHub;
pub use meter::RequestMeter;
pub use runtime::run_session;
