//! `/_sim/*`: what the simulator accepted, for tests and sandbox scripts in other processes.

use super::state::Shared;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/_sim/hangups", get(hangups)).route("/_sim/actions", get(actions))
}

/// `[{"carrier":"twilio","call_id":"CA…"}, …]`.
async fn hangups(State(sim): State<Arc<Shared>>) -> Json<Value> {
    let list = sim.hangups().into_iter().map(|(carrier, call_id)| json!({"carrier": carrier, "call_id": call_id}));
    Json(Value::Array(list.collect()))
}

async fn actions(State(sim): State<Arc<Shared>>) -> Json<Value> {
    Json(Value::Array(sim.actions()))
}

pub(super) async fn no_route() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "no such route in the carrier simulator"}))).into_response()
}
