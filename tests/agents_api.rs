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

/// `GET /api/byok` says whether the plan allows BYOK and why not; `?id=` checks one key only.
#[test]
fn byok_state_and_a_single_key_check() {
    let p = Prod::start(&[("deepgram", "org-own-dg-key-7777")]);
    let byok = req(&p.server, "GET", "/api/byok", None, &p.key, 200);
    assert_eq!((byok["byokAllowed"].clone(), byok["useOwnKeys"].clone()), (json!(true), json!(false)), "{byok}");
    assert_eq!(byok["reason"], json!(null));
    let free = req(&p.server, "POST", "/api/admin/orgs", Some(json!({"name": "f", "plan": "free"})), ADMIN, 201);
    let free_byok = req(&p.server, "GET", "/api/byok", None, free["apiKey"].as_str().expect("key"), 200);
    assert_eq!(free_byok["byokAllowed"], false);
    assert!(free_byok["reason"].as_str().is_some_and(|r| r.contains("free")), "{free_byok}");

    let good = req(
        &p.server,
        "PUT",
        "/api/credentials",
        Some(json!({"provider": "deepgram", "apiKey": "org-own-dg-key-7777"})),
        &p.key,
        200,
    );
    let bad = req(
        &p.server,
        "PUT",
        "/api/credentials",
        Some(json!({"provider": "openai", "apiKey": "sk-wrong-0000"})),
        &p.key,
        200,
    );
    let id = good["id"].as_str().expect("id");
    let one = req(&p.server, "POST", &format!("/api/credentials/check?id={id}"), None, &p.key, 200);
    assert_eq!(one["results"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["results"][0]["status"], "ok", "{one}");
    let all = req(&p.server, "POST", "/api/credentials/check", None, &p.key, 200);
    let bad_result = all["results"].as_array().expect("results").iter().find(|r| r["id"] == bad["id"]).cloned();
    assert_eq!(bad_result.map(|r| r["status"].clone()), Some(json!("error")), "{all}");
    let missing = req(&p.server, "POST", "/api/credentials/check?id=conn_nope", None, &p.key, 404);
    assert_eq!(missing["error"]["code"], "not_found");
}

/// The admin lists the console shows: every org (no key material) and every plan.
#[test]
fn admin_lists_orgs_and_plans() {
    let p = Prod::start(&[]);
    let orgs = req(&p.server, "GET", "/api/admin/orgs", None, ADMIN, 200);
    let listed = orgs["orgs"].as_array().expect("orgs");
    assert!(listed.iter().any(|o| o["orgId"] == p.org.as_str() && o["name"] == "acme" && o["plan"] == "pro"), "{orgs}");
    assert!(!orgs.to_string().contains(&p.key) && !orgs.to_string().contains("sk_"), "no key material: {orgs}");
    let plans = req(&p.server, "GET", "/api/admin/plans", None, ADMIN, 200);
    let ids: Vec<&str> = plans["plans"].as_array().expect("plans").iter().filter_map(|p| p["id"].as_str()).collect();
    assert!(ids.contains(&"free") && ids.contains(&"pro"), "{plans}");
    assert_eq!(req(&p.server, "GET", "/api/admin/orgs", None, &p.key, 401)["error"]["code"], "unauthorized");
    assert_eq!(req(&p.server, "GET", "/api/admin/plans", None, "nope", 401)["error"]["code"], "unauthorized");
}
