//! The fuzz smoke: `scripts/fuzz.sh` builds every coverage-guided fuzz target (fuzz/, libFuzzer)
//! and runs each for a few seconds (5, or `SWITCHBOARD_FUZZ_SECS`) from its committed seeds, so
//! a parser change that panics on hostile bytes fails here. Longer runs: the README's "Hostile
//! input" section.

use std::process::Command;

#[test]
fn every_fuzz_target_runs_without_a_crash() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/fuzz.sh"))
        .arg(std::env::var("SWITCHBOARD_FUZZ_SECS").unwrap_or_else(|_| "5".into()))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run scripts/fuzz.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "fuzzing failed:\n{text}");
    let targets = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    let expected = targets.matches("[[bin]]").count();
    assert!(expected >= 8, "fuzz/Cargo.toml lists {expected} targets");
    assert!(text.contains(&format!("fuzz: {expected} targets ran")), "not every target ran:\n{text}");
    assert_eq!(text.matches("stat::number_of_executed_units").count(), expected, "{text}");
}
