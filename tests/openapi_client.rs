//! The OpenAPI document a real server serves: it is `docs/openapi.json`, every operation in it
//! is routed, and a TypeScript client generated from it (openapi-typescript + openapi-fetch,
//! pinned in tests/sdk and installed by `scripts/install-deps.sh`) compiles under
//! `tsc --strict` with a usage file that reads typed fields (`tests/sdk/openapi-usage.ts`).
//! The same usage file must fail to compile once one success schema is taken out.

mod util;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use util::*;

fn served(server: &Server) -> Value {
    let (status, text) = http("GET", &format!("{}/api/openapi.json", server.url), None, None);
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("the served document is JSON")
}

/// Status and (for a 404) the error message of one request, without reading a streaming body.
fn probe(url: &str, method: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().expect("client");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let resp = client.request(method, url).header("content-type", "application/json").body("{}").send().await;
        let resp = resp.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status().as_u16();
        if status != 404 {
            return (status, String::new());
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        (status, body["error"]["message"].as_str().unwrap_or_default().to_string())
    })
}

/// Routed: neither the router's "no route" 404 nor a 405 for the documented method.
fn assert_routed(server: &Server, method: &str, path: &str) {
    let concrete = regex::Regex::new(r"\{[^}]+\}").expect("regex").replace_all(path, "x1");
    let (status, message) = probe(&format!("{}{concrete}", server.url), method);
    assert_ne!(status, 405, "{method} {path} is documented but its method is not routed");
    assert!(!message.starts_with("no route"), "{method} {path} is documented but not routed: {message}");
}

#[test]
fn the_served_document_is_the_committed_one_and_every_operation_is_routed() {
    let server = Server::sandbox();
    let doc = served(&server);
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/openapi.json")).expect("docs/openapi.json"))
            .expect("docs/openapi.json is JSON");
    assert!(doc == committed, "the served document is not docs/openapi.json: cargo run -- openapi > docs/openapi.json");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            assert_routed(&server, method, path);
            operations += 1;
        }
    }
    assert!(operations >= 40, "only {operations} operations documented");
    // The probe tells a route from none: an undocumented path is the router's "no route".
    let (status, message) = probe(&format!("{}/api/nowhere", server.url), "get");
    assert_eq!((status, message.as_str()), (404, "no route for GET /api/nowhere"));
}

/// `node` with the packages of tests/sdk, failing loudly when they are not installed.
fn sdk_dir() -> PathBuf {
    let dir = root().join("tests/sdk");
    for pkg in ["openapi-typescript", "openapi-fetch", "typescript"] {
        assert!(
            dir.join("node_modules").join(pkg).exists(),
            "{pkg} is not installed in tests/sdk: run scripts/install-deps.sh (npm ci in tests/sdk)"
        );
    }
    dir
}

/// Generate `schema.d.ts` from `doc` in `work`, then type-check the usage file against it.
fn compile_client(work: &Path, doc: &Value) -> (bool, String) {
    let sdk = sdk_dir();
    std::fs::write(work.join("openapi.json"), doc.to_string()).expect("write the document");
    let node = |args: &[&str]| {
        let out =
            Command::new("node").args(args).current_dir(work).output().expect("node runs (scripts/install-deps.sh)");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let gen = sdk.join("node_modules/openapi-typescript/bin/cli.js");
    let (ok, text) = node(&[gen.to_str().expect("path"), "openapi.json", "-o", "schema.d.ts"]);
    assert!(ok, "openapi-typescript failed:\n{text}");
    let tsc = sdk.join("node_modules/typescript/bin/tsc");
    let args = ["--noEmit", "--strict", "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler"];
    let mut all = vec![tsc.to_str().expect("path")];
    all.extend(args);
    all.extend(["--lib", "es2022,dom", "usage.ts"]);
    node(&all)
}

#[test]
fn a_client_generated_from_the_served_document_compiles() {
    let server = Server::sandbox();
    let doc = served(&server);
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("openapi-client-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    std::os::unix::fs::symlink(sdk_dir().join("node_modules"), work.join("node_modules")).expect("link node_modules");
    std::fs::copy(root().join("tests/sdk/openapi-usage.ts"), work.join("usage.ts")).expect("copy the usage file");

    let (ok, text) = compile_client(&work, &doc);
    assert!(ok, "the client generated from the served document does not compile:\n{text}");

    // Without the balance's schema the same file must not compile: the check has teeth.
    let mut untyped = doc.clone();
    let ok_response = &mut untyped["paths"]["/api/balance"]["get"]["responses"]["200"];
    ok_response.as_object_mut().expect("getBalance 200").remove("content");
    let (ok, text) = compile_client(&work, &untyped);
    assert!(!ok && text.contains("availableMicros"), "tsc accepted an untyped balance:\n{text}");
    let _ = std::fs::remove_dir_all(&work);
}
