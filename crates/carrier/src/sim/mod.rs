//! A simulator of the carrier endpoints this crate calls, all four carriers on one loopback
//! port (so every carrier's base URL is the same `http://127.0.0.1:PORT`). It checks
//! credentials the carrier's way and answers with the carrier's statuses and error shapes:
//!
//! | carrier | route | auth | ok | already ended | bad credential |
//! |---|---|---|---|---|---|
//! | Twilio | `POST /2010-04-01/Accounts/{sid}/Calls/{sid}.json`, `Status=completed` | Basic | `200` call JSON | `404` code `20404` | `401` code `20003` |
//! | Telnyx | `POST /v2/calls/{id}/actions/{hangup,answer,streaming_start}` | Bearer key | `200` | `422` code `90018` | `401` code `10009` |
//! | Plivo | `DELETE /v1/Account/{id}/Call/{uuid}/` | Basic | `204` | `404` | `401` |
//! | Vonage | `PUT /v1/calls/{uuid}` `{"action":"hangup"}` | Bearer RS256 app JWT | `204` | `404` | `401` |
//!
//! Every call id is live until hung up once. What it accepted is kept for tests
//! ([`RunningCarrierSim::hangups`], [`RunningCarrierSim::actions`]) and served to other
//! processes at `GET /_sim/hangups` and `GET /_sim/actions`. Error codes other than the ones in
//! the table (a malformed body, an unknown action) are the simulator's own approximations.

mod accounts;
mod auth;
mod control;
mod plivo;
mod state;
mod telnyx;
#[cfg(test)]
mod tests;
mod twilio;
mod vonage;

pub use accounts::SimAccounts;

use axum::Router;
use state::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Serves the simulator on `127.0.0.1:0` until the handle is dropped.
pub async fn start(accounts: SimAccounts) -> std::io::Result<RunningCarrierSim> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base_url = Url::parse(&format!("http://{addr}")).map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared::new(accounts));
    let app = Router::new()
        .merge(twilio::routes())
        .merge(telnyx::routes())
        .merge(plivo::routes())
        .merge(vonage::routes())
        .merge(control::routes())
        .fallback(control::no_route)
        .with_state(shared.clone());
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::warn!(error = %e, sim = "carrier", "simulator stopped");
        }
    });
    Ok(RunningCarrierSim { addr, base_url, shared, stop })
}

/// A running carrier simulator; dropping it stops the server.
pub struct RunningCarrierSim {
    addr: SocketAddr,
    base_url: Url,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl RunningCarrierSim {
    /// The API base of every carrier: pass it where [`crate::default_base`] would go.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `(carrier, call id)` of every call hung up, in order; a repeat that answered "already
    /// ended" is not listed again.
    pub fn hangups(&self) -> Vec<(String, String)> {
        self.shared.hangups()
    }

    /// Every accepted Telnyx `answer` / `streaming_start`, in order:
    /// `{"carrier","action","call_control_id","body"}`.
    pub fn actions(&self) -> Vec<serde_json::Value> {
        self.shared.actions()
    }
}

impl Drop for RunningCarrierSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
