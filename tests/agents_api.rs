//! `GET /api/agents` and `PUT /api/agents/{id}` (the console's agent list and editor) on a
//! production server: an org sees and edits only its own agents, and an edit passes the same
//! access check as creation.

mod util;

use serde_json::json;
use util::tenant::{req, Prod, ADMIN};

#[test]
fn agents_are_listed_and_edited_per_org() {
    let p = Prod::start(&[]);
    let listed = req(&p.server, "GET", "/api/agents", None, &p.key, 200);
    assert_eq!(listed["agents"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["agents"][0]["id"], p.agent.as_str());
    assert_eq!(listed["agents"][0]["agent"]["llm"]["model"], "gpt-4o-mini");

    let mut spec = listed["agents"][0]["agent"].clone();
    spec["prompt"] = json!("Answer in one sentence.");
    spec["llm"]["model"] = json!("gpt-4.1-mini");
    let path = format!("/api/agents/{}", p.agent);
    let updated = req(&p.server, "PUT", &path, Some(spec.clone()), &p.key, 200);
    assert_eq!(updated["agent"]["llm"]["model"], "gpt-4.1-mini");
    let read = req(&p.server, "GET", &path, None, &p.key, 200);
    assert_eq!(read["agent"]["prompt"], "Answer in one sentence.");

    // The creation check holds for edits: an unpriced model is refused, and nothing changes.
    let mut bad = spec.clone();
    bad["llm"]["model"] = json!("no-such-model");
    let refused = req(&p.server, "PUT", &path, Some(bad), &p.key, 400);
    assert_eq!(refused["error"]["code"], "MODEL_NOT_ALLOWED", "{refused}");
    assert_eq!(req(&p.server, "GET", &path, None, &p.key, 200)["agent"]["llm"]["model"], "gpt-4.1-mini");

    // Another org sees none of them and cannot edit them (404, as for ids that do not exist).
    let other = req(&p.server, "POST", "/api/admin/orgs", Some(json!({"name": "other", "plan": "pro"})), ADMIN, 201);
    let other_key = other["apiKey"].as_str().expect("key");
    assert_eq!(req(&p.server, "GET", "/api/agents", None, other_key, 200)["agents"], json!([]));
    let e = req(&p.server, "PUT", &path, Some(spec), other_key, 404);
    assert_eq!(e["error"]["code"], "not_found");
    assert_eq!(req(&p.server, "GET", "/api/agents", None, "sk_wrong", 401)["error"]["code"], "unauthorized");
}
