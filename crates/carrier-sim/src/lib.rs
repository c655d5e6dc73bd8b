//! A simulator of the carrier endpoints the `carrier` crate calls, all four carriers on one loopback
//! port (so every carrier's base URL is the same `http://127.0.0.1:PORT`). It checks
//! credentials the carrier's way and answers with the carrier's statuses and error shapes:
//!
//! | carrier | route | auth | ok | already ended | bad credential |
//! |---|---|---|---|---|---|
//! | Twilio | `POST /2010-04-01/Accounts/{sid}/Calls/{sid}.json`, `Status=completed` | Basic | `200` call JSON | `404` code `20404` | `401` code `20003` |
//! | Twilio | same route, `Twiml=<Response><Dial>…<Number>`/`<Sip>` (transfer) | Basic | `200` call JSON | `400` code `21220` | `401` code `20003` |
//! | Telnyx | `POST /v2/calls/{id}/actions/{hangup,answer,streaming_start,transfer,send_dtmf}` | Bearer key | `200` | `422` code `90018` | `401` code `10009` |
//! | Plivo | `DELETE /v1/Account/{id}/Call/{uuid}/` | Basic | `204` | `404` | `401` |
//! | Plivo | `POST /v1/Account/{id}/Call/{uuid}/` `legs=aleg`, `aleg_url`, `aleg_method` (transfer) | Basic | `202` | `404` (UNVERIFIED) | `401` |
//! | Plivo | `POST /v1/Account/{id}/Call/{uuid}/DTMF/` `digits` | Basic | `202` | `404` (UNVERIFIED) | `401` |
//! | Vonage | `PUT /v1/calls/{uuid}` `{"action":"hangup"}` or `"transfer"` with an inline NCCO | Bearer RS256 app JWT | `204` | `404` | `401` |
//! | Vonage | `PUT /v1/calls/{uuid}/dtmf` `{"digits"}` | Bearer RS256 app JWT | `200` `{"message":"DTMF sent"}` | `404` (UNVERIFIED) | `401` |
//!
//! Sources are cited in the `carrier` crate's modules. Every call id is live until it is hung up
//! or transferred once; after that it is over for this server (a hang-up answers "already
//! ended", a second transfer too). A Plivo transfer's `aleg_url` is fetched like Plivo would,
//! but only from loopback, and the XML it answered is recorded. Transfers only accept the
//! documents the carrier crate sends (one `<Dial>`, one `connect`), parsed strictly so an
//! escaping mistake shows.
//!
//! What it accepted is kept for tests ([`RunningCarrierSim::hangups`],
//! [`RunningCarrierSim::actions`], [`RunningCarrierSim::transfers`],
//! [`RunningCarrierSim::dtmf`]) and served to other processes at `GET /_sim/hangups`,
//! `/_sim/hangup-attempts` (answered or not), `/_sim/actions`, `/_sim/transfers` and
//! `/_sim/dtmf`. Error codes other than the ones in the table (a malformed body, an unknown
//! action) are the simulator's own approximations.
//!
//! # Layout
//! It runs on simkit's [`simkit::SimServer`] like the STT and TTS simulators: `service.rs` is
//! the route table (a [`simkit::Service`] that only replies, never upgrades), one module per
//! carrier answers its routes, `control.rs` the `/_sim/*` lists, `state.rs` holds what was
//! accepted. A Plivo transfer is a deferred reply: the `202` goes out once the `aleg_url`
//! fetch is recorded.

mod accounts;
mod auth;
mod control;
mod dial_doc;
mod plivo;
mod plivo_fetch;
mod service;
mod state;
mod telnyx;
mod twilio;
mod vonage;

pub use accounts::SimAccounts;

use service::CarrierSim;
use simkit::{SimKeys, SimServer};
use state::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use url::Url;

/// Serves the simulator on `127.0.0.1:0` until the handle is dropped.
pub async fn start(accounts: SimAccounts) -> std::io::Result<RunningCarrierSim> {
    // Credentials are checked per carrier against `accounts`; simkit's key set stays unused.
    let server = SimServer::start(SimKeys::default(), CarrierSim(Arc::new(Shared::new(accounts)))).await?;
    Ok(RunningCarrierSim(server))
}

/// A running carrier simulator (on simkit's [`SimServer`]); dropping it stops the server.
pub struct RunningCarrierSim(SimServer<CarrierSim>);

impl RunningCarrierSim {
    /// The API base of every carrier: pass it where [`carrier::default_base`] would go.
    pub fn base_url(&self) -> Url {
        self.0.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr()
    }

    /// `(carrier, call id)` of every call hung up, in order; a repeat that answered "already
    /// ended" is not listed again.
    pub fn hangups(&self) -> Vec<(String, String)> {
        self.shared().hangups()
    }

    /// Every accepted Telnyx `answer` / `streaming_start`, in order:
    /// `{"carrier","action","call_control_id","body"}`.
    pub fn actions(&self) -> Vec<serde_json::Value> {
        self.shared().actions()
    }

    /// Every accepted transfer, in order: `{"carrier","call_id","target","caller_id"}` plus what
    /// the carrier received: Twilio `"twiml"`, Telnyx `"body"`, Vonage `"ncco"`, Plivo
    /// `"aleg_url"`, `"aleg_method"`, the `"xml"` fetched there and `"fetch_error"`. `target`
    /// and `caller_id` are as the carrier got them (Vonage's without `+`; Plivo's from the XML).
    pub fn transfers(&self) -> Vec<serde_json::Value> {
        self.shared().transfers()
    }

    /// Every accepted DTMF send, in order: `{"carrier","call_id","digits"}`, digits as sent.
    pub fn dtmf(&self) -> Vec<serde_json::Value> {
        self.shared().dtmf()
    }

    /// Makes this a slow carrier: every request to a carrier route takes effect `delay` after
    /// it arrives, and only if the client still waits then; the `/_sim/*` lists answer at
    /// once. Tests use it to act while a transfer is in flight.
    pub fn delay_replies(&self, delay: std::time::Duration) {
        self.shared().set_reply_delay(delay);
    }

    /// How many requests reached a carrier route, accepted or refused.
    pub fn requests(&self) -> usize {
        self.shared().requests()
    }

    fn shared(&self) -> &Shared {
        &self.0.service().0
    }
}
