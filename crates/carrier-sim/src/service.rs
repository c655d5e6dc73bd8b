//! The simulator as a [`simkit::Service`]: one route table for the four carriers and
//! `/_sim/*`. Every route answers with a reply; a Plivo transfer answers after its XML fetch.

use super::state::Shared;
use super::{control, plivo, telnyx, twilio, vonage};
use percent_encoding::percent_decode_str;
use simkit::{Reply, Request, Route, Stats, Ws};
use std::convert::Infallible;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a route answers. Nothing upgrades to a websocket here, hence no session.
pub(super) type CarrierRoute = Route<Infallible>;

pub(super) struct CarrierSim(pub(super) Arc<Shared>);

impl simkit::Service for CarrierSim {
    type Session = Infallible;
    const NAME: &'static str = "carrier";
    const SCHEME: &'static str = "http";

    fn route(&self, req: &Request, _: &Stats) -> CarrierRoute {
        let sim = &self.0;
        if let Some(name) = req.path.strip_prefix("/_sim/") {
            return Route::Reply(control::reply(sim, &req.method, name));
        }
        // Every request to a carrier route counts, accepted or not, so a test can prove a
        // refused argument never left the client.
        sim.count_request();
        let delay = sim.reply_delay();
        if delay.is_zero() {
            return carrier_route(sim, req);
        }
        // A slow carrier: the request takes effect only after the delay, and only if the client
        // is still waiting then (simkit drops the future when it hangs up).
        let (sim, req) = (sim.clone(), req.clone());
        Route::Deferred(Box::pin(async move {
            tokio::time::sleep(delay).await;
            match carrier_route(&sim, &req) {
                Route::Reply(reply) => reply,
                Route::Deferred(reply) => reply.await,
                Route::Upgrade(never) | Route::UpgradeWith(never, _) => match never {},
                Route::Stream(head, _) => head,
            }
        }))
    }

    async fn serve(self: Arc<Self>, _: Ws, session: Infallible, _: Arc<Stats>, _: CancellationToken) {
        match session {}
    }
}

/// The carrier route `req` names, answered.
fn carrier_route(sim: &Arc<Shared>, req: &Request) -> CarrierRoute {
    let (path, method) = (req.path.as_str(), req.method.as_str());
    let reply = if let Some([sid, call]) = capture("/2010-04-01/Accounts/{}/Calls/{}", path) {
        match method {
            "POST" => twilio::update_call(sim, &sid, &call, req),
            _ => not_allowed("POST"),
        }
    } else if let Some([id, action]) = capture("/v2/calls/{}/actions/{}", path) {
        match method {
            "POST" => telnyx::action(sim, &id, &action, req),
            _ => not_allowed("POST"),
        }
    } else if let Some([auth_id, uuid]) = capture("/v1/Account/{}/Call/{}/", path) {
        // Plivo's resource URLs end in `/`; without it is a different (missing) route.
        match method {
            "DELETE" => plivo::hang_up(sim, &auth_id, &uuid, req),
            "POST" => return plivo::transfer(sim, &auth_id, &uuid, req),
            _ => not_allowed("DELETE,POST"),
        }
    } else if let Some([auth_id, uuid]) = capture("/v1/Account/{}/Call/{}/DTMF/", path) {
        match method {
            "POST" => plivo::send_digits(sim, &auth_id, &uuid, req),
            _ => not_allowed("POST"),
        }
    } else if let Some([uuid]) = capture("/v1/calls/{}", path) {
        match method {
            "PUT" => vonage::modify_call(sim, &uuid, req),
            _ => not_allowed("PUT"),
        }
    } else if let Some([uuid]) = capture("/v1/calls/{}/dtmf", path) {
        match method {
            "PUT" => vonage::dtmf(sim, &uuid, req),
            _ => not_allowed("PUT"),
        }
    } else {
        control::no_route()
    };
    Route::Reply(reply)
}

/// The `N` segments of `path` where `pattern` has `{}`, percent-decoded; `None` unless every
/// other segment matches exactly and every captured one is non-empty UTF-8.
pub(super) fn capture<const N: usize>(pattern: &str, path: &str) -> Option<[String; N]> {
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    let mut params = Vec::with_capacity(N);
    loop {
        match (want.next(), got.next()) {
            (None, None) => return params.try_into().ok(),
            (Some("{}"), Some(seg)) if !seg.is_empty() => {
                params.push(percent_decode_str(seg).decode_utf8().ok()?.into_owned());
            }
            (Some(lit), Some(seg)) if lit == seg => {}
            _ => return None,
        }
    }
}

/// A known route asked with another method: an empty `405` naming the ones it takes.
fn not_allowed(allow: &'static str) -> Reply {
    Reply::empty(405).header("allow", allow)
}

#[cfg(test)]
mod tests {
    use super::capture;

    #[test]
    fn captures_decoded_segments_and_nothing_else() {
        let twilio = "/2010-04-01/Accounts/{}/Calls/{}";
        assert_eq!(capture(twilio, "/2010-04-01/Accounts/AC1/Calls/CA1.json"), Some(["AC1".into(), "CA1.json".into()]));
        let [id, _] = capture::<2>("/v2/calls/{}/actions/{}", "/v2/calls/v3:a%23b%3F/actions/hangup").unwrap();
        assert_eq!(id, "v3:a#b?");
        assert_eq!(capture::<2>("/v1/Account/{}/Call/{}/", "/v1/Account/MA1/Call/u1"), None, "trailing slash");
        assert_eq!(capture::<1>("/v1/calls/{}", "/v1/calls/"), None, "empty segment");
        assert_eq!(capture::<1>("/v1/calls/{}", "/v1/calls/u1/dtmf"), None, "extra segment");
        assert_eq!(capture::<1>("/v1/calls/{}", "/v1/calls/%FF"), None, "not UTF-8");
        assert_eq!(capture::<2>("/v1/calls/{}", "/v1/calls/u1"), None, "wrong count");
    }
}
