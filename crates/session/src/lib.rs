//! Session runtime: one call, from gateway connect to ledger settle.
//!
//! # Layout
//! - [`transport`] — gateway wire protocols (Twilio Media Streams, Telnyx, Plivo, Vonage,
//!   AudioSocket, the client websocket) as [`transport::WireCodec`]s: message ⇄ PCM and control.
//! - [`admission`] — who may open a session (tokens, keys, sandbox), decided at `start`.
//! - `runtime` — one session from connect to settle: admit, open, run the tasks, settle.
//! - `open` — plan (resolved once), session row, hold on the payer's funds, STT connect with
//!   connect-time failover.
//! - `reader` — the gateway reader: wall-clock bounds, VAD, resampling, STT feed.
//! - `turn` — the turn manager: the caller's turn (`user`), the agent's (`agent`), barge-in,
//!   failover within a turn, metering and the closing line.
//! - `output` — the writer: agent audio on the gateway's playout clock, `clear` on barge-in.
//! - `tools` — the agent's tools during a call: webhooks (signed), end call, transfer, DTMF.
//! - `meter` — usage lines priced from the plan's rate snapshot, checkpointed to the store.
//! - `ledger` — a session's store access, off the turn loop; `committer` — the server's one
//!   writer that commits every call's checkpoints in shared transactions.
//! - [`hub`] — live [`SessionEvent`]s by session, for watchers (`switchboard call`, operators).
//! - `trace` — the session's trace spans: a turn span per agent turn, a span per provider
//!   request, each with its outcome.
//! - [`rates_sync`] — the rate table follows the store's changes (notification or version).
//! - [`drain`] — graceful shutdown: stop admitting, let calls finish, end the rest politely,
//!   wait for usage the store has not taken yet.
//! - [`spool`] — usage the store never took, kept in a local file and written at the next start.
//!
//! # Invariants
//! - The gateway read loop never awaits a provider; a full queue drops the frame and counts it.
//! - The [`billing::SessionPlan`] is fixed at open: keys rotated later do not touch this call.
//! - Usage keys `session_id:line:seq` make replays no-ops; a crash loses at most one checkpoint.

pub mod admission;
pub mod chunker;
mod committer;
mod deps;
pub mod drain;
mod events;
pub mod hub;
mod ledger;
mod meter;
pub mod metrics;
mod open;
mod output;
pub mod rates_sync;
mod reader;
mod runtime;
pub mod spool;
mod tools;
mod trace;
pub mod transport;
mod turn;

pub use admission::{AccessConfig, UpgradeAuth};
pub use committer::{Committer, STORE_WAIT};
pub use deps::{Providers, SessionDeps};
pub use events::SessionEvent;
pub use hub::SessionHub;
pub use meter::RequestMeter;
pub use runtime::run_session;
pub use tools::egress::is_public as is_public_ip;
