//! The carriers' REST APIs that Switchboard calls itself (their simulator is the `carrier-sim`
//! crate).
//!
//! Inbound calls arrive by webhook and media socket (the gateways); this crate is the other
//! direction: [`hang_up`] ends a call we decided to end (Twilio, Telnyx Call Control, Plivo,
//! Vonage), [`transfer`] hands it to a number or SIP URI ([`Target`]), [`send_dtmf`] plays
//! keypad tones into it (not on Twilio: [`CarrierError::Unsupported`]), and
//! [`telnyx_answer_and_stream`] answers a Telnyx Call Control call and points its media at our
//! gateway. Plivo transfers fetch their instructions from a URL Switchboard serves
//! ([`plivo_dial_xml`]). [`Credentials`] is a tenant's carrier account as the vault stores it
//! (camelCase JSON); Vonage calls carry a fresh RS256 application JWT ([`vonage_jwt`]).
//!
//! Like the provider adapters, nothing here holds a key or a base URL: both come with each
//! call, so a simulator is just another base URL.
//!
//! # Invariants
//! - Every request has a 5 s deadline (connect to last body byte); bodies are read up to 64 KiB.
//! - Secrets are `SecretString` from parse on; `Debug`, errors and logs show account ids only.
//! - Ids go into URLs one percent-encoded path segment each (Telnyx's `:` kept), so an id
//!   cannot add a segment or a query.
//! - "Already ended" is a success ([`HangUp::AlreadyEnded`]) for hang-up, which is retried and
//!   races the caller; for transfer and DTMF it is [`CarrierError::CallEnded`], never
//!   [`CarrierError::Unauthorized`].
//! - Targets, caller ids and digits are validated before any request: a model's bad argument
//!   never reaches the carrier.
#![forbid(unsafe_code)]
#![deny(unreachable_pub)]

mod carrier;
mod credentials;
mod dial_xml;
mod dtmf;
mod error;
mod hang_up;
mod http;
mod plivo;
mod target;
mod telnyx;
mod transfer;
mod twilio;
mod vonage;
pub mod vonage_jwt;

pub use carrier::{default_base, Carrier};
pub use credentials::{Credentials, CredentialsProblem};
pub use dial_xml::{escape as xml_escape, plivo_dial_xml};
pub use dtmf::send_dtmf;
pub use error::CarrierError;
pub use hang_up::{hang_up, HangUp};
pub use target::{PhoneNumber, SipUri, Target};
pub use telnyx::{telnyx_answer_and_stream, CALL_ENDED as TELNYX_CALL_ENDED};
pub use transfer::{transfer, PlivoXml, Transfer, XmlMethod};
pub use twilio::{NOT_FOUND as TWILIO_NOT_FOUND, NOT_IN_PROGRESS as TWILIO_NOT_IN_PROGRESS};
