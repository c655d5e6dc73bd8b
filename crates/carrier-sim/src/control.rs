//! `/_sim/*`: what the simulator accepted, for tests and sandbox scripts in other processes.

use super::state::Shared;
use serde_json::{json, Value};
use simkit::Reply;

/// `GET /_sim/{name}`: `hangups`, `hangup-attempts`, `actions`, `transfers` or `dtmf`.
pub(super) fn reply(sim: &Shared, method: &str, name: &str) -> Reply {
    let list = match name {
        // `[{"carrier":"twilio","call_id":"CA…"}, …]`.
        "hangups" => pairs(sim.hangups()),
        // Every hang-up asked for, including those answered "already ended", same shape.
        "hangup-attempts" => pairs(sim.hangup_attempts()),
        "actions" => sim.actions(),
        "transfers" => sim.transfers(),
        "dtmf" => sim.dtmf(),
        _ => return no_route(),
    };
    match method {
        "GET" => Reply::json(200, Value::Array(list).to_string()),
        _ => Reply::empty(405).header("allow", "GET"),
    }
}

fn pairs(list: Vec<(String, String)>) -> Vec<Value> {
    list.into_iter().map(|(carrier, call_id)| json!({"carrier": carrier, "call_id": call_id})).collect()
}

pub(super) fn no_route() -> Reply {
    Reply::json(404, json!({"error": "no such route in the carrier simulator"}).to_string())
}
