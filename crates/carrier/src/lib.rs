//! The carriers' REST APIs that Switchboard calls itself, and a simulator of them.
//!
//! Inbound calls arrive by webhook and media socket (the gateways); this crate is the other
//! direction: [`hang_up`] ends a call we decided to end (Twilio, Telnyx Call Control, Plivo,
//! Vonage), and [`telnyx_answer_and_stream`] answers a Telnyx Call Control call and points its
//! media at our gateway. [`Credentials`] is a tenant's carrier account as the vault stores it
//! (camelCase JSON); Vonage calls carry a fresh RS256 application JWT ([`vonage_jwt`]).
//!
//! Like the provider adapters, nothing here holds a key or a base URL: both come with each
//! call, so [`sim`] is just another base URL.
//!
//! # Invariants
//! - Every request has a 5 s deadline (connect to last body byte); bodies are read up to 64 KiB.
//! - Secrets are `SecretString` from parse on; `Debug`, errors and logs show account ids only.
//! - Ids go into URLs one percent-encoded path segment each (Telnyx's `:` kept), so an id
//!   cannot add a segment or a query.
//! - "Already ended" is a success ([`HangUp::AlreadyEnded`]), not an error: hang-up is retried
//!   and races the caller.
#![forbid(unsafe_code)]
#![deny(unreachable_pub)]

mod carrier;
mod credentials;
mod error;
mod hang_up;
mod http;
mod plivo;
pub mod sim;
mod telnyx;
mod twilio;
mod vonage;
pub mod vonage_jwt;

pub use carrier::{default_base, Carrier};
pub use credentials::{Credentials, CredentialsProblem};
pub use error::CarrierError;
pub use hang_up::{hang_up, HangUp};
pub use telnyx::telnyx_answer_and_stream;
