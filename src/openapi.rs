//! The OpenAPI document, generated from the code. Every API route is registered through
//! `utoipa_axum::routes!` from its handler's `#[utoipa::path]` (see `api::api_routes`), so the
//! router and the document come from one list. This module holds what no single operation
//! owns: the info block, the tags, the security schemes and the JSON error every operation may
//! answer. `switchboard openapi` prints the document; `docs/openapi.json` is that output.

use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, ResponseBuilder};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "Real-time voice session orchestrator: gateways, STT/LLM/TTS, barge-in, managed/BYOK keys and billing. Money is integer micro-USD. Keys are never returned: only ids and last 4 characters."
    ),
    tags(
        (name = "ops", description = "Health, metrics and this document"),
        (name = "gateways", description = "Media websockets of the carriers and the client"),
        (name = "webhooks", description = "Carrier answer webhooks, each checked by the carrier's signature"),
        (name = "calls", description = "Calls, sessions and their live events (org key, or the admin token for all)"),
        (name = "access", description = "Numbers, client tokens and AudioSocket registrations"),
        (name = "credentials", description = "The org's provider keys (BYOK) and their slots"),
        (name = "models", description = "Which models an org may use, and their prices"),
        (name = "agents", description = "The org's agents"),
        (name = "billing", description = "Balance and usage records"),
        (name = "openai", description = "The OpenAI-compatible endpoint"),
        (name = "admin", description = "Operator API (SWITCHBOARD_ADMIN_TOKEN)"),
    ),
    components(schemas(crate::api::ErrorBody))
)]
struct ApiDoc;

/// The document before any route is added: what `api::api_routes` starts from.
pub fn base() -> OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

/// What every operation shares, added once the routes are collected: the bearer schemes the
/// operations name, and the JSON error as the `default` response of each operation.
pub fn finish(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = |what: &str| {
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(what)).build())
    };
    components.add_security_scheme("orgKey", bearer("The org's API key, sk_…"));
    components.add_security_scheme("adminToken", bearer("SWITCHBOARD_ADMIN_TOKEN"));
    let error = ResponseBuilder::new()
        .description("The JSON error: a stable code and a message")
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            op.responses.responses.entry("default".to_string()).or_insert_with(|| error.clone().into());
        }
    }
}

static SERVED: OnceLock<String> = OnceLock::new();

/// Keep the document of the router being built, as served JSON: made once, at start-up.
pub fn serve(doc: &OpenApi) {
    SERVED.get_or_init(|| to_json(doc));
}

/// The served document (generated now if no router was built yet).
pub fn served() -> &'static str {
    SERVED.get_or_init(|| to_json(&crate::api::document()))
}

/// Pretty JSON, the form `docs/openapi.json` is kept in.
pub fn to_json(doc: &OpenApi) -> String {
    doc.to_pretty_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document did not serialize");
        "{}".to_string()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn generated() -> Value {
        serde_json::from_str(&super::to_json(&crate::api::document())).expect("the document is JSON")
    }

    /// `docs/openapi.json` is what the code generates, so the file in the repository (and any
    /// client generated from it) describes this server.
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed: Value = serde_json::from_str(include_str!("../docs/openapi.json")).expect("docs/openapi.json");
        assert!(
            committed == generated(),
            "docs/openapi.json is not what the code generates; regenerate it with\n\n    cargo run -- openapi > docs/openapi.json\n"
        );
    }

    /// What generated clients and schemathesis rely on: a unique operation id, every path
    /// parameter declared, the JSON error on every operation, and a schema for every success
    /// body other than a websocket upgrade or an empty 204.
    #[test]
    fn every_operation_has_an_id_its_parameters_a_typed_success_and_the_error() {
        let doc = generated();
        let mut ids = std::collections::HashSet::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("path item") {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(ids.insert(id.to_string()), "{method} {path}: operationId {id} used twice");
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                    assert!(declared.contains(&name), "{method} {path}: path parameter {name} not declared");
                }
                let default = &op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(default, "#/components/schemas/Error", "{method} {path}: no default JSON error");
                let successes: Vec<(&String, &Value)> = op["responses"]
                    .as_object()
                    .expect("responses")
                    .iter()
                    .filter(|(status, _)| status.starts_with('2'))
                    .collect();
                let upgrade = op["responses"].get("101").is_some();
                assert!(upgrade || !successes.is_empty(), "{method} {path}: no success response");
                for (status, resp) in successes {
                    if status == "204" {
                        continue;
                    }
                    let content = resp["content"].as_object();
                    let typed = content.is_some_and(|c| !c.is_empty() && c.values().all(|m| m.get("schema").is_some()));
                    assert!(typed, "{method} {path}: response {status} has no schema");
                }
            }
        }
    }
}
