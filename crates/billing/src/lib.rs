//! Keys and billing: the rate table, session plans resolved once at session start, usage
//! records priced in integer micro-USD, and the store they live in.
//!
//! # Layout
//! - [`rates`] — rate table rows `(service, provider, model, unit, price, managed)` from CSV or store.
//! - [`keys`] — the platform's managed provider keys, swappable at runtime (rotation).
//! - [`plan`] / [`resolver`] — what serves each service of one session, fixed at open.
//! - [`usage`] / [`pricing`] — usage records and how a quantity becomes money.
//! - [`store`] — one [`store::Store`] trait; SQLite (embedded) and Postgres (shared by nodes).
//!
//! # Invariants
//! - Money is integer micro-USD ([`MicroUsd`]); a missing price is an error, never zero.
//! - A plan is resolved once; later key or rate changes affect only sessions opened after them.
//! - Usage keys `session_id:line:seq` are unique, so a replayed write is a no-op.

mod error;
pub mod hold;
pub mod keys;
mod money;
pub mod org;
pub mod plan;
pub mod pricing;
pub mod rates;
pub mod resolver;
pub mod store;
pub mod tools;
pub mod usage;
pub mod vault;

pub use error::BillingError;
pub use keys::ManagedKeys;
pub use money::MicroUsd;
pub use plan::{Credential, FallbackPlans, ServicePlan, SessionPlan};
pub use rates::{Rate, RateTable, RateUnit};
pub use resolver::{AgentSpec, Fallbacks, PlanResolver, ServiceChoice, Timeouts};
pub use tools::{AgentTool, ToolRun};
pub use usage::{BilledTo, Service, UsageRecord, UsageUnit};
