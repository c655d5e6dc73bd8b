//! The REST side of the xAI simulator: `GET /v1/api-key`, answered on the WebSocket port so
//! one base URL serves both.

use simkit::{Reply, Request, Stats};

/// `GET /v1/api-key`: the key's details, or xAI's refusal.
pub(super) fn api_key(req: &Request, stats: &Stats) -> Reply {
    match req.header_key("authorization", "Bearer ") {
        None => super::missing_key(),
        Some(key) if !stats.check_key(key) => Reply::json(400, super::bad_key_body(key)),
        Some(key) => Reply::json(200, key_info(key)),
    }
}

/// The documented fields of `GET /v1/api-key`, for an active key.
fn key_info(key: &str) -> String {
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    serde_json::json!({
        "redacted_api_key": format!("xai-****{tail}"),
        "user_id": "sim-user",
        "name": "simulated key",
        "create_time": "2026-01-01T00:00:00Z",
        "modify_time": "2026-01-01T00:00:00Z",
        "modified_by": "sim-user",
        "team_id": "sim-team",
        "acls": ["api-key:model:*", "api-key:endpoint:*"],
        "api_key_id": "sim-key",
        "team_blocked": false,
        "api_key_blocked": false,
        "api_key_disabled": false,
    })
    .to_string()
}
