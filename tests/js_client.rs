//! The JS client (`clients/js`) against real servers: `node --test clients/js/test` with a
//! sandbox server and a production one (an org key, its agent). Node is required; a missing
//! Node fails this test, it never skips.

mod util;

use std::process::Command;
use util::tenant::Prod;
use util::*;

/// Node ≥ 20.10: its `WebSocket` (behind `--experimental-websocket`) is what the client uses.
fn require_node() {
    let out = Command::new("node").arg("--version").output().expect("node is required (scripts/install-deps.sh)");
    let v = String::from_utf8_lossy(&out.stdout);
    let mut parts = v.trim().trim_start_matches('v').split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    assert!((major, minor) >= (20, 10), "node {v} is too old: the JS client tests need 20.10 or newer");
}

#[test]
fn js_client_node_tests_pass_against_a_running_server() {
    require_node();
    let sandbox = Server::sandbox();
    let prod = Prod::start(&[]);
    let out = Command::new("node")
        .args([
            "--experimental-websocket",
            "--no-warnings",
            "--test",
            "--test-reporter=tap",
            "test/call.test.js",
            "test/resample.test.js",
        ])
        .current_dir(root().join("clients/js"))
        .env("SWITCHBOARD_URL", &sandbox.url)
        .env("SWITCHBOARD_PROD_URL", &prod.server.url)
        .env("SWITCHBOARD_ORG_KEY", &prod.key)
        .env("SWITCHBOARD_AGENT", &prod.agent)
        .env("SWITCHBOARD_CALLS", root().join("assets/calls"))
        .output()
        .expect("node is required for the JS client tests (scripts/install-deps.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "node --test failed:\n{stdout}\n{stderr}\nserver log: {}", prod.server.log.display());
    // The runner found and ran the tests (an empty directory also "passes").
    assert!(stdout.contains("# pass 9") && stdout.contains("# fail 0"), "{stdout}");
}
